package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newProduceCmd is a placeholder until its issue lands.
func newProduceCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "produce", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("produce: not built yet") }}
}
