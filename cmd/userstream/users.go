package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newUsersCmd is a placeholder until its issue lands.
func newUsersCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "users", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("users: not built yet") }}
}
