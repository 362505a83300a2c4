package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newStreamCmd is a placeholder until its issue lands.
func newStreamCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "stream", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("stream: not built yet") }}
}
