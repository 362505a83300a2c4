package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/userstream/userstream/internal/broker"
)

// addKafkaFlags registers the Kafka client flags on fs, bound to c; the
// current values of c are the defaults (set c.Brokers first).
func addKafkaFlags(fs *pflag.FlagSet, c *broker.Config) {
	fs.StringSliceVar(&c.Brokers, "brokers", c.Brokers, "Kafka seed brokers, comma separated host:port list")
	fs.BoolVar(&c.TLS, "tls", c.TLS, "connect to the brokers over TLS")
	fs.StringVar(&c.TLSCAFile, "tls-ca", c.TLSCAFile, "PEM file of CA certificates to trust (implies --tls)")
	fs.StringVar(&c.TLSCertFile, "tls-cert", c.TLSCertFile, "PEM client certificate for mutual TLS (implies --tls; needs --tls-key)")
	fs.StringVar(&c.TLSKeyFile, "tls-key", c.TLSKeyFile, "PEM key of --tls-cert (implies --tls)")
	fs.BoolVar(&c.TLSInsecureSkipVerify, "tls-insecure", c.TLSInsecureSkipVerify, "do not verify the brokers' certificates (testing only; implies --tls)")
	fs.StringVar(&c.SASLMechanism, "sasl-mechanism", c.SASLMechanism, "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL)")
	fs.StringVar(&c.SASLUser, "sasl-user", c.SASLUser, "SASL user name")
	fs.StringVar(&c.SASLPassword, "sasl-password", c.SASLPassword, "SASL password (prefer the USERSTREAM_SASL_PASSWORD environment variable)")
}

// kafkaFlagOf names the flag of each broker.Config field.
var kafkaFlagOf = map[string]string{
	"Brokers": "--brokers", "TLSCAFile": "--tls-ca", "TLSCertFile": "--tls-cert", "TLSKeyFile": "--tls-key",
	"SASLMechanism": "--sasl-mechanism", "SASLUser": "--sasl-user", "SASLPassword": "--sasl-password",
}

// kafkaUsage turns a Kafka settings error into wrong usage naming the flag.
func kafkaUsage(err error) error {
	var se *broker.SettingError
	if errors.As(err, &se) {
		flag := kafkaFlagOf[se.Setting]
		if flag == "" {
			flag = se.Setting
		}
		return usageError{fmt.Errorf("%s: %s", flag, se.Problem)}
	}
	if errors.Is(err, broker.ErrInvalidConfig) {
		return usageError{err}
	}
	return err
}
