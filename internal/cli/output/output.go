// Package output renders command results as text, JSON or YAML, the formats
// every listing command accepts through -o.
package output

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// Format is the value of a command's -o flag.
type Format string

// The formats every -o flag accepts.
const (
	Text Format = "text"
	JSON Format = "json"
	YAML Format = "yaml"
)

// Set implements pflag.Value so a bad format fails at flag parsing.
func (f *Format) Set(s string) error {
	switch Format(s) {
	case Text, JSON, YAML:
		*f = Format(s)
		return nil
	}
	return fmt.Errorf("unknown output format %q (want text, json or yaml)", s)
}

func (f *Format) String() string { return string(*f) }

// Type implements pflag.Value.
func (f *Format) Type() string { return "format" }

// AddFlag registers -o/--output on cmd with shell completion of its values.
func AddFlag(cmd *cobra.Command, f *Format) {
	*f = Text
	cmd.Flags().VarP(f, "output", "o", "output format: text, json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{string(Text), string(JSON), string(YAML)}, cobra.ShellCompDirectiveNoFileComp))
}

// Print writes v as JSON or YAML, or calls text for the human format.
func Print(w io.Writer, f Format, v any, text func(io.Writer) error) error {
	switch f {
	case JSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case YAML:
		data, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding YAML: %w", err)
		}
		_, err = w.Write(data)
		return err
	default:
		return text(w)
	}
}
