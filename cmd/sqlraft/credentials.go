package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Environment variables the CLI reads secrets from, so they need not appear
// on a command line (where ps and shell history see them).
const (
	envPassword = "SQLRAFT_PASSWORD"
	envToken    = "SQLRAFT_TOKEN"
)

// security is how the CLI protects and authenticates its connection.
type security struct {
	tls        bool   // --tls
	caFile     string // --ca: trust this CA bundle instead of the system's roots
	certFile   string // --cert: client certificate, for servers that verify them
	keyFile    string // --key
	serverName string // --server-name: name expected in the server certificate
	user       string // --user: Basic authentication; the password is prompted or from SQLRAFT_PASSWORD
	token      string // --token: Bearer authentication (or SQLRAFT_TOKEN)

	// Read once per command, not once per connection (bench opens many).
	password     string
	havePassword bool
	stderr       io.Writer
}

func (s *security) addFlags(pf *pflag.FlagSet) {
	pf.BoolVar(&s.tls, "tls", false, "connect with TLS (implied by --ca, --cert and --key)")
	pf.StringVar(&s.caFile, "ca", "", "PEM file of the CA(s) to verify the server with (default: the system's roots)")
	pf.StringVar(&s.certFile, "cert", "", "PEM client certificate, for a server that verifies client certificates")
	pf.StringVar(&s.keyFile, "key", "", "PEM private key of --cert")
	pf.StringVar(&s.serverName, "server-name", "", "name to verify in the server certificate (default: the host of --addr)")
	pf.StringVarP(&s.user, "user", "u", "", "authenticate as this user; the password comes from $"+envPassword+" or a prompt")
	pf.StringVar(&s.token, "token", "", "authenticate with this API token (default: $"+envToken+")")
}

// dialOptions returns the transport and per-call credentials.
func (s *security) dialOptions() ([]grpc.DialOption, error) {
	if s.user != "" && s.tokenValue() != "" {
		return nil, fail("--user and --token (or $%s) are mutually exclusive", envToken)
	}
	if (s.certFile == "") != (s.keyFile == "") {
		return nil, fail("--cert and --key must be given together")
	}
	useTLS := s.tls || s.caFile != "" || s.certFile != "" || s.serverName != ""
	var opts []grpc.DialOption
	if useTLS {
		cfg, err := s.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	auth, err := s.authorization()
	if err != nil {
		return nil, err
	}
	if auth != "" {
		if !useTLS {
			fmt.Fprintln(s.errOut(), "warning: sending credentials without TLS; anyone on the path can read them (use --tls)")
		}
		opts = append(opts, grpc.WithPerRPCCredentials(headerCredentials{value: auth}))
	}
	return opts, nil
}

func (s *security) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.serverName}
	if s.caFile != "" {
		pem, err := os.ReadFile(s.caFile)
		if err != nil {
			return nil, fail("--ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fail("--ca: %s holds no PEM certificate", s.caFile)
		}
		cfg.RootCAs = pool
	}
	if s.certFile != "" {
		pair, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
		if err != nil {
			return nil, fail("--cert/--key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

func (s *security) tokenValue() string {
	if s.token != "" {
		return s.token
	}
	return os.Getenv(envToken)
}

// authorization is the value of the authorization header, or "".
func (s *security) authorization() (string, error) {
	if tok := s.tokenValue(); tok != "" {
		return "Bearer " + tok, nil
	}
	if s.user == "" {
		return "", nil
	}
	if strings.Contains(s.user, ":") {
		return "", fail("--user: a user name cannot contain ':'")
	}
	pw, err := s.readPassword()
	if err != nil {
		return "", err
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(s.user+":"+pw)), nil
}

// readPassword takes the password from SQLRAFT_PASSWORD, or prompts for it
// without echo when stdin is a terminal.
func (s *security) readPassword() (string, error) {
	if s.havePassword {
		return s.password, nil
	}
	pw, ok := os.LookupEnv(envPassword)
	if !ok {
		fd := int(os.Stdin.Fd())
		if !term.IsTerminal(fd) {
			return "", fail("--user %s needs a password: set $%s, or run on a terminal to be prompted", s.user, envPassword)
		}
		fmt.Fprintf(s.errOut(), "password for %s: ", s.user)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(s.errOut())
		if err != nil {
			return "", fail("read password: %v", err)
		}
		pw = string(b)
	}
	s.password, s.havePassword = pw, true
	return pw, nil
}

func (s *security) errOut() io.Writer {
	if s.stderr != nil {
		return s.stderr
	}
	return os.Stderr
}

// headerCredentials sends one authorization header with every call.
type headerCredentials struct{ value string }

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (h headerCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": h.value}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials: false,
// so a plaintext test cluster can be used; dialOptions warns instead.
func (headerCredentials) RequireTransportSecurity() bool { return false }
