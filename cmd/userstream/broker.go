package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newBrokerCmd is a placeholder until its issue lands.
func newBrokerCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "broker", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("broker: not built yet") }}
}

// newTopicsCmd is a placeholder until its issue lands.
func newTopicsCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "topics", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("topics: not built yet") }}
}
