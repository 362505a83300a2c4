package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newDevCmd is a placeholder until its issue lands.
func newDevCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "dev", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("dev: not built yet") }}
}
