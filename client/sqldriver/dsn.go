package sqldriver

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/client"
)

// Scheme is the DSN scheme: "sqlraft://".
const Scheme = "sqlraft://"

// Config is a parsed DSN. Build one by hand and pass it to NewConnector
// for sql.OpenDB, or let sql.Open parse the DSN.
type Config struct {
	// Addrs are the client (gRPC) addresses of the nodes, host:port.
	Addrs []string
	// Consistency of every Query (UNSPECIFIED: the server's default,
	// LINEARIZABLE unless the node was started otherwise).
	Consistency sqlraftv1.ReadConsistency
	// Freshness bounds how stale a NONE read at a follower may be (0: no
	// bound).
	Freshness time.Duration
	// User and Password authenticate with Basic; Token with Bearer. At
	// most one of the two.
	User, Password, Token string
	// TLS turns TLS on (also implied by CAFile, CertFile and ServerName).
	TLS bool
	// CAFile is a PEM bundle to verify the server with (default: the
	// system's roots); CertFile and KeyFile a client certificate;
	// ServerName the name expected in the server's certificate.
	CAFile, CertFile, KeyFile, ServerName string
	// NoForward asks followers not to forward (client.WithNoForward).
	NoForward bool
	// RetryUnknownOutcome lets the client repeat writes whose outcome is
	// unknown (client.WithRetryUnknownOutcome): only for idempotent
	// workloads.
	RetryUnknownOutcome bool
	// MaxMessageSize is the largest message sent or received (0: the
	// client's default, client.DefaultMaxMessageSize).
	MaxMessageSize int
}

// ParseDSN parses
//
//	sqlraft://HOST:PORT[,HOST:PORT...][/][?PARAM=VALUE&...]
//
// The parameters, all optional:
//
//	consistency            none, weak, linearizable or strong: the level of every Query
//	                       (default: the server's, linearizable unless changed)
//	freshness              a Go duration (5s): with consistency=none, the most a follower
//	                       may trail the leader's contact
//	user, password         Basic authentication (send it over TLS)
//	token                  Bearer authentication with a NAME.SECRET token
//	tls                    true or false (default false; true when ca, cert or server_name is given)
//	ca                     path of a PEM CA bundle to verify the server with (default: system roots)
//	cert, key              paths of a PEM client certificate and its key
//	server_name            the name to verify in the server's certificate
//	no_forward             true: followers answer NOT_LEADER and the client goes to the leader itself
//	retry_unknown_outcome  true: repeat writes whose outcome is unknown (idempotent workloads only)
//	max_message_size       bytes, the largest message sent or received (default 64 MiB)
//
// Values are URL-encoded (a password with & or = must be escaped). An
// unknown parameter is an error, so a misspelling is not silently ignored.
func ParseDSN(dsn string) (*Config, error) {
	rest, ok := strings.CutPrefix(dsn, Scheme)
	if !ok {
		// The DSN is not quoted: it may hold a password.
		return nil, fmt.Errorf("sqldriver: the DSN does not start with %s", Scheme)
	}
	hosts, query, _ := strings.Cut(rest, "?")
	hosts = strings.TrimSuffix(hosts, "/")
	cfg := &Config{}
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.Addrs = append(cfg.Addrs, h)
		}
	}
	if len(cfg.Addrs) == 0 {
		return nil, fmt.Errorf("sqldriver: DSN names no node (want %shost:port[,host:port...])", Scheme)
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("sqldriver: DSN parameters: %v", err)
	}
	for key, values := range params {
		if err := cfg.set(key, values[len(values)-1]); err != nil {
			return nil, fmt.Errorf("sqldriver: DSN parameter %s: %w", key, err)
		}
	}
	if cfg.Token != "" && cfg.User != "" {
		return nil, fmt.Errorf("sqldriver: DSN: user and token are mutually exclusive")
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, fmt.Errorf("sqldriver: DSN: cert and key must be given together")
	}
	return cfg, nil
}

func (c *Config) set(key, v string) (err error) {
	switch key {
	case "consistency":
		c.Consistency, err = ParseConsistency(v)
	case "freshness":
		c.Freshness, err = time.ParseDuration(v)
	case "user":
		c.User = v
	case "password":
		c.Password = v
	case "token":
		c.Token = v
	case "tls":
		c.TLS, err = strconv.ParseBool(v)
	case "ca":
		c.CAFile = v
	case "cert":
		c.CertFile = v
	case "key":
		c.KeyFile = v
	case "server_name":
		c.ServerName = v
	case "no_forward":
		c.NoForward, err = strconv.ParseBool(v)
	case "retry_unknown_outcome":
		c.RetryUnknownOutcome, err = strconv.ParseBool(v)
	case "max_message_size":
		c.MaxMessageSize, err = strconv.Atoi(v)
	default:
		return fmt.Errorf("unknown parameter (see the sqldriver package documentation)")
	}
	return err
}

// ParseConsistency reads none, weak, linearizable or strong (any case, or
// the enum's full name).
func ParseConsistency(s string) (sqlraftv1.ReadConsistency, error) {
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "READ_CONSISTENCY_") {
		name = "READ_CONSISTENCY_" + name
	}
	level, ok := sqlraftv1.ReadConsistency_value[name]
	if !ok {
		return 0, fmt.Errorf("%q is not a consistency level (none, weak, linearizable or strong)", s)
	}
	return sqlraftv1.ReadConsistency(level), nil
}

// ClientOptions returns the client options the configuration asks for.
func (c *Config) ClientOptions() ([]client.Option, error) {
	var opts []client.Option
	if c.TLS || c.CAFile != "" || c.CertFile != "" || c.ServerName != "" {
		cfg, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithTLS(cfg))
	}
	switch {
	case c.Token != "":
		opts = append(opts, client.WithBearerToken(c.Token))
	case c.User != "":
		opts = append(opts, client.WithBasicAuth(c.User, c.Password))
	}
	if c.NoForward {
		opts = append(opts, client.WithNoForward())
	}
	if c.RetryUnknownOutcome {
		opts = append(opts, client.WithRetryUnknownOutcome())
	}
	if c.MaxMessageSize > 0 {
		opts = append(opts, client.WithMaxMessageSize(c.MaxMessageSize))
	}
	return opts, nil
}

func (c *Config) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("sqldriver: ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sqldriver: ca: %s holds no PEM certificate", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("sqldriver: cert/key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
