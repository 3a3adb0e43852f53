package config

import (
	"errors"
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// DiagnosticLines renders an error from Load or Parse the way `vaurien
// validate` prints it: one "file:line:col: error: summary: detail" line per
// diagnostic, every one of them, in file order. An error that is not
// diagnostics (a file that cannot be read) is one "path: error: ..." line.
func DiagnosticLines(path string, err error) []string {
	var diags hcl.Diagnostics
	if !errors.As(err, &diags) {
		return []string{fmt.Sprintf("%s: error: %v", path, err)}
	}
	out := make([]string, 0, len(diags))
	for _, d := range diags {
		where := path
		switch {
		case d.Subject != nil && d.Subject.Start.Line == 0: // not in a file: the command line
			where = d.Subject.Filename
		case d.Subject != nil:
			where = fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		line := fmt.Sprintf("%s: %s: %s", where, sev, d.Summary)
		if d.Detail != "" {
			line += ": " + d.Detail
		}
		out = append(out, line)
	}
	return out
}
