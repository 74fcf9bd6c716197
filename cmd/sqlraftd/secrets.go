package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sqlraft/sqlraft/internal/auth"
)

// hashPasswordCommand is "sqlraftd hash-password": a password on stdin, its
// argon2id hash on stdout, for a users file's password_hash.
func hashPasswordCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "hash-password",
		Short: "Read a password on stdin and print its argon2id hash for --users-file (password_hash)",
		Long: "Reads a password on stdin (prompting twice, without echo, on a terminal; otherwise the first line) " +
			"and prints its argon2id hash (m=19 MiB, t=2, p=1) for the password_hash of a user in --users-file.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			h, err := auth.HashPassword(pw)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), h)
			return err
		},
	}
}

// newTokenCommand is "sqlraftd new-token NAME": a fresh API token and the
// hash to list under tokens.
func newTokenCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "new-token NAME",
		Short: "Print a new random API token NAME.SECRET (line 1) and its hash for --users-file (line 2)",
		Long: "Prints a new API token, NAME.SECRET with a 256-bit random secret, on the first line (give it to the " +
			"client: \"authorization: Bearer NAME.SECRET\"; it is not stored anywhere), and on the second the " +
			"token_hash to list with name NAME under tokens: in --users-file.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			token, h, err := auth.NewToken(args[0])
			if err != nil {
				return fmt.Errorf("token name %q: %w", args[0], err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n%s\n", token, h)
			return err
		},
	}
}

// readPassword reads a password from in: on a terminal without echo, asked
// twice; otherwise the first line, without its line ending.
func readPassword(in io.Reader, prompt io.Writer) ([]byte, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, "Password: ")
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return nil, err
		}
		fmt.Fprint(prompt, "Again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(pw, again) {
			return nil, errors.New("the passwords differ")
		}
		return nonEmpty(pw)
	}
	line, err := bufio.NewReader(in).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	return nonEmpty(bytes.TrimSuffix(line, []byte("\r")))
}

func nonEmpty(pw []byte) ([]byte, error) {
	if len(pw) == 0 {
		return nil, errors.New("empty password")
	}
	return pw, nil
}
