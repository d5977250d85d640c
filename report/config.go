package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/scaffold"
)

// Settings prints the effective configuration: a key per line with its
// value and where it came from.
func Settings(w io.Writer, ss []deploy.Setting) error {
	tw := table(w, "KEY", "VALUE", "FROM")
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Key, Dash(s.Value), s.Source)
	}
	return tw.Flush()
}

// Problems prints config validate's findings, one per line, and a summary
// naming the file.
func Problems(w io.Writer, file string, errs []error) {
	for _, err := range errs {
		fmt.Fprintln(w, err)
	}
	switch len(errs) {
	case 0:
		fmt.Fprintf(w, "%s: valid\n", file)
	case 1:
		fmt.Fprintf(w, "%s: 1 problem\n", file)
	default:
		fmt.Fprintf(w, "%s: %d problems\n", file, len(errs))
	}
}

// Init is what `dflow init` wrote, and what to run next.
func Init(w io.Writer, r scaffold.Result) {
	fmt.Fprintf(w, "wrote %s for package %s (%s), target [%s]\nnext: `dflow set 3` makes three local nodes\n", r.Path, r.Package, r.File, strings.Join(r.Targets, ", "))
}
