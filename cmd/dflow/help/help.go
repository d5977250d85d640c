// Package help holds the long help and the examples of every dflow command,
// one Markdown file per command named by its path (deploy.md,
// deploy/retry.md; dflow.md for the root), and writes the CLI reference
// (docs/cli.md) from the command tree. A file is the command's Long text,
// then its Example as a closing ```sh block.
package help

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

//go:embed *.md */*.md
var files embed.FS

const fence = "```sh\n"

// Apply sets the Long and Example of cmd and of every command below it
// from their files.
func Apply(cmd *cobra.Command) {
	b, _ := files.ReadFile(file(cmd))
	text := string(b)
	if i := strings.LastIndex(text, fence); i >= 0 {
		cmd.Example = strings.TrimSuffix(strings.TrimRight(text[i+len(fence):], "\n"), "\n```")
		text = text[:i]
	}
	cmd.Long = strings.TrimSpace(text)
	for _, c := range cmd.Commands() {
		Apply(c)
	}
}

// file is cmd's help file.
func file(cmd *cobra.Command) string {
	if !cmd.HasParent() {
		return cmd.Name() + ".md"
	}
	return path.Join(strings.Fields(cmd.CommandPath())[1:]...) + ".md"
}

// Check says which commands below root have no help file and which files
// name no command.
func Check(root *cobra.Command) error {
	var want, missing, extra []string
	walk(root, func(c *cobra.Command) { want = append(want, file(c)) })
	_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !slices.Contains(want, p) {
			extra = append(extra, p)
		}
		return err
	})
	for _, p := range want {
		if _, err := fs.Stat(files, p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing)+len(extra) > 0 {
		return fmt.Errorf("cmd/dflow/help: missing %v; naming no command %v", missing, extra)
	}
	return nil
}

// walk calls f on cmd and every available command below it, in help order.
func walk(cmd *cobra.Command, f func(*cobra.Command)) {
	f(cmd)
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			walk(c, f)
		}
	}
}

// Reference is the CLI reference in Markdown: every command's synopsis,
// help, examples and flags, as its --help says them.
func Reference(root *cobra.Command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s command reference\n\n", root.Name())
	fmt.Fprintf(&b, "<!-- Generated from cmd/dflow and cmd/dflow/help/ by `go test ./cmd/dflow -run TestCLIDocs -update`; do not edit. -->\n\n")
	fmt.Fprintf(&b, "What `%s COMMAND --help` says, for every command. The flags every command takes are under [%s](#%s).\n\n", root.Name(), root.Name(), root.Name())
	walk(root, func(c *cobra.Command) {
		fmt.Fprintf(&b, "- [%s](#%s): %s\n", c.CommandPath(), strings.ReplaceAll(c.CommandPath(), " ", "-"), c.Short)
	})
	walk(root, func(c *cobra.Command) {
		c.InitDefaultHelpFlag() // as Execute does: -h is every command's
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n```\n", c.CommandPath(), c.Short)
		if c.Runnable() {
			fmt.Fprintln(&b, c.UseLine())
		}
		if c.HasAvailableSubCommands() {
			fmt.Fprintln(&b, c.CommandPath(), "[command]")
		}
		b.WriteString("```\n")
		if c.Long != "" {
			b.WriteString("\n" + prose(c.Long))
		}
		if c.Example != "" {
			fmt.Fprintf(&b, "\nExamples:\n\n%s%s\n```\n", fence, c.Example)
		}
		if fl := c.NonInheritedFlags(); fl.HasAvailableFlags() {
			fmt.Fprintf(&b, "\nFlags:\n\n```\n%s```\n", fl.FlagUsages())
		}
	})
	return b.String()
}

// prose is help text as Markdown: paragraphs as they are (with < and *
// escaped), indented runs of lines as code.
func prose(s string) string {
	var b strings.Builder
	code := false
	for _, l := range strings.Split(s, "\n") {
		indented := strings.HasPrefix(l, "  ")
		if indented != code {
			b.WriteString("```\n")
			code = indented
		}
		if !code {
			l = strings.NewReplacer("<", "&lt;", "*", `\*`).Replace(l)
		}
		b.WriteString(l + "\n")
	}
	if code {
		b.WriteString("```\n")
	}
	return b.String()
}
