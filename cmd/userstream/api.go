package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newAPICmd is a placeholder until its issue lands.
func newAPICmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "api", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("api: not built yet") }}
}
