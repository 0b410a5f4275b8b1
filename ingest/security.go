package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Security is how a Kafka source protects its connections: either, both or neither.
type Security struct {
	// TLS encrypts the connections when set.
	TLS *tls.Config
	// SASL authenticates them when set.
	SASL sasl.Mechanism
}

// Dialer returns the dialer every connection of a Kafka source goes through: kafka-go's
// defaults plus opts.
func Dialer(opts Security) (*kafka.Dialer, error) {
	return &kafka.Dialer{
		Timeout:       10 * time.Second,
		DualStack:     true,
		TLS:           opts.TLS,
		SASLMechanism: opts.SASL,
	}, nil
}

// TLSConfig builds a client TLS configuration. An empty caFile means the system's CAs;
// certFile and keyFile, both or neither, are a client certificate for mutual TLS.
func TLSConfig(caFile, certFile, keyFile, serverName string, insecure bool) (*tls.Config, error) {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         serverName,
		InsecureSkipVerify: insecure, //nolint:gosec // opt-in, for tests
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read kafka tls ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka tls ca file %s holds no PEM certificate", caFile)
		}
		c.RootCAs = pool
	}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load kafka tls client certificate %s and key %s: %w", certFile, keyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	case certFile != "" || keyFile != "":
		return nil, errors.New("kafka tls needs both cert_file and key_file, or neither")
	}
	return c, nil
}

// SASLOptions are the settings of one SASL mechanism; each mechanism reads its own.
type SASLOptions struct {
	// Mechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM
	// (case-insensitive).
	Mechanism string
	// Username and Password are PLAIN's and SCRAM's.
	Username, Password string
	// OAuth is where OAUTHBEARER's tokens come from.
	OAuth OAuthOptions
	// Region is AWS_MSK_IAM's AWS region; empty means the AWS SDK's (AWS_REGION, the
	// shared config's profile).
	Region string
}

// SASLMechanism returns the SASL mechanism opts name. Its errors never include a
// password or secret.
func SASLMechanism(opts SASLOptions) (sasl.Mechanism, error) {
	var algo scram.Algorithm
	switch mech := strings.ToUpper(strings.TrimSpace(opts.Mechanism)); mech {
	case "OAUTHBEARER":
		return NewOAuthBearer(opts.OAuth)
	case "AWS_MSK_IAM":
		return MSKIAM(opts.Region)
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if opts.Username == "" {
			return nil, errors.New("kafka sasl: no username")
		}
		if opts.Password == "" {
			return nil, fmt.Errorf("kafka sasl: no password for user %s", opts.Username)
		}
		switch mech {
		case "PLAIN":
			return plain.Mechanism{Username: opts.Username, Password: opts.Password}, nil
		case "SCRAM-SHA-256":
			algo = scram.SHA256
		default:
			algo = scram.SHA512
		}
	default:
		return nil, fmt.Errorf("kafka sasl: unknown mechanism %q (want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM)", opts.Mechanism)
	}
	m, err := scram.Mechanism(algo, opts.Username, opts.Password)
	if err != nil {
		// scram's errors come from SASLprep of the user name and password; do not pass
		// on their text in case it quotes the password.
		return nil, fmt.Errorf("kafka sasl: invalid %s credentials for user %s", opts.Mechanism, opts.Username)
	}
	return m, nil
}

// Transport returns a kafka-go transport (for kafka.Writer and kafka.Client) that
// protects its connections as d does.
func Transport(d *kafka.Dialer) *kafka.Transport {
	return &kafka.Transport{DialTimeout: d.Timeout, TLS: d.TLS, SASL: d.SASLMechanism}
}
