// Package catalog renders the registered behaviors, protocols and probe
// kinds, from their one declaration each, as the text of `vaurien
// behaviors` and `vaurien protocols` and as the Markdown reference pages
// under docs/.
package catalog

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/probe"
	"github.com/vaurien-go/vaurien/pkg/tlsroute"
)

// entry is what behaviors and protocols have in common for rendering.
type entry struct {
	Name, Doc, Example string
	Options            chaos.Options
}

func behaviors() []entry {
	var out []entry
	for _, s := range chaos.Behaviors() {
		out = append(out, entry{s.Name, s.Doc, s.Example, s.Options})
	}
	return out
}

func protocols() []entry {
	var out []entry
	for _, s := range chaos.Protocols() {
		out = append(out, entry{s.Name, s.Doc, s.Example, s.Options})
	}
	return out
}

// BehaviorsText writes the `vaurien behaviors` listing.
func BehaviorsText(w io.Writer) { text(w, behaviors()) }

// ProtocolsText writes the `vaurien protocols` listing.
func ProtocolsText(w io.Writer) { text(w, protocols()) }

func text(w io.Writer, es []entry) {
	for i, e := range es {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s\n", e.Name)
		fmt.Fprintf(w, "%s\n", indent(wrap(e.Doc, 76), "    "))
		if len(e.Options) == 0 {
			fmt.Fprintf(w, "    options: none\n")
			continue
		}
		fmt.Fprintf(w, "    options:\n")
		for _, o := range e.Options {
			fmt.Fprintf(w, "      %s (%s, default %s)\n", o.Name, kindText(o), Default(o))
			fmt.Fprintf(w, "%s\n", indent(wrap(optionDoc(o), 68), "          "))
		}
	}
}

// BehaviorsMarkdown writes docs/behaviors.md.
func BehaviorsMarkdown(w io.Writer) {
	markdown(w, "Behaviors", "A route's mix draws one behavior per unit of traffic: per connection on tcp and smtp routes, per request on http, redis and memcache routes, per statement (or batch up to Sync) on mysql and postgres routes. The share of the mix that no behavior claims is `dummy`.", behaviors())
}

// ProtocolsMarkdown writes docs/protocols.md.
func ProtocolsMarkdown(w io.Writer) {
	markdown(w, "Protocols", "A route's `protocol` says how vaurien frames its traffic. Protocol options go in the route's `protocol_options` block.", protocols())
}

// TLSMarkdown writes docs/tls.md: the options of a route's tls and
// backend_tls blocks, and the behaviors that act on the handshake.
func TLSMarkdown(w io.Writer) {
	var handshake []string
	for _, b := range chaos.Behaviors() {
		if b.Handshake {
			handshake = append(handshake, "`"+b.Name+"`")
		}
	}
	var inner []string
	for _, p := range chaos.Protocols() {
		switch {
		case p.InnerTLS && p.TLSBoth != "":
			inner = append(inner, fmt.Sprintf("`%s` (both blocks together or neither: %s)", p.Name, p.TLSBoth))
		case p.InnerTLS:
			inner = append(inner, "`"+p.Name+"`")
		}
	}
	intro := "A route terminates TLS on its listener with a `tls` block and originates TLS to its backend with a `backend_tls` block; the two combine independently, and a route with neither relays as before (spliced on tcp). Both sides offer TLS 1.2 at least, and http routes offer ALPN `http/1.1`. The behaviors " + strings.Join(handshake, ", ") + " act on the handshakes of a route with a `tls` block, drawn once per connection (see [behaviors](behaviors.md))."
	if len(inner) > 0 {
		intro += " These protocols negotiate TLS inside their exchange and carry the blocks out there: " + strings.Join(inner, "; ") + "."
	}
	markdown(w, "TLS", intro, []entry{
		{"tls", "Terminates TLS on the route's listener, with a certificate loaded from files (and loaded again when they change) or generated at start with a CA of its own.", "tls {\n  generate = true\n  names    = [\"localhost\", \"vaurien\"]\n  ca_out   = \"/shared/vaurien-ca.pem\"\n}", tlsroute.ServerOptions},
		{"backend_tls", "Originates TLS to the route's backend, verifying its certificate, and presents a client certificate when one is given (mTLS).", "backend_tls {\n  server_name = \"redis.internal\"\n  ca          = \"/etc/vaurien/redis-ca.pem\"\n  cert        = \"/etc/vaurien/client.pem\"\n  key         = \"/etc/vaurien/client.key\"\n}", tlsroute.BackendOptions},
	})
}

// ProbesMarkdown writes docs/probes.md: the probe kinds of experiments and
// the measures their SLOs assert.
func ProbesMarkdown(w io.Writer) {
	var es []entry
	for _, s := range probe.Specs() {
		es = append(es, entry{s.Name, s.Doc, s.Example, s.Options})
	}
	markdown(w, "Probes", fmt.Sprintf("A probe of an experiment measures the system under test with one kind of attempt, declared as a block inside the probe block. Besides that block, a probe takes `interval` (the pause between two attempts of one worker; default %s, at least %s) and `concurrency` (how many workers; default %d). A probe sends at most %.0f attempts a second: it measures, it does not load.", probe.DefaultInterval, probe.MinInterval, probe.DefaultConcurrency, probe.MaxRate), es)
	fmt.Fprintf(w, "## SLO measures\n\nAn `slo` block names a `probe`, optionally the phase it applies `during` (a step's name, `%s` or `%s`; the whole run without it), and one or more of these limits:\n\n| measure | type | holds when | meaning |\n|---|---|---|---|\n", "steady_state", "recovery")
	for _, m := range probe.Measures() {
		kind, holds := "ratio 0..1", "at most the limit"
		if m.Kind == chaos.Duration {
			kind = "duration"
		}
		if m.Bound == probe.AtLeast {
			holds = "at least the limit"
		}
		fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", m.Name, kind, holds, m.Doc)
	}
}

func markdown(w io.Writer, title, intro string, es []entry) {
	fmt.Fprintf(w, "# %s\n\n<!-- Generated from the declarations in the code by `go test ./pkg/catalog -update`; do not edit. -->\n\n%s\n\n", title, intro)
	for _, e := range es {
		fmt.Fprintf(w, "## %s\n\n%s\n\n", e.Name, e.Doc)
		if len(e.Options) > 0 {
			fmt.Fprintf(w, "| option | type | default | meaning |\n|---|---|---|---|\n")
			for _, o := range e.Options {
				fmt.Fprintf(w, "| `%s` | %s | `%s` | %s |\n", o.Name, kindText(o), Default(o), strings.ReplaceAll(optionDoc(o), "|", "\\|"))
			}
			fmt.Fprintln(w)
		}
		if e.Example != "" {
			fmt.Fprintf(w, "```hcl\n%s\n```\n\n", e.Example)
		}
	}
}

// optionDoc is an option's sentence, and for an option kept from the
// original Vaurien that does nothing here, why.
func optionDoc(o chaos.Option) string {
	if o.NoEffect == "" {
		return o.Doc
	}
	return fmt.Sprintf("%s. No effect here: %s; accepted so that the original Vaurien's configurations load.", o.Doc, o.NoEffect)
}

func kindText(o chaos.Option) string {
	if len(o.Choices) > 0 {
		return "one of " + strings.Join(o.Choices, ", ")
	}
	if r := o.Range(); r != "" {
		return o.Kind.String() + ", " + r
	}
	return o.Kind.String()
}

// Default renders an option's default the way it is written in HCL.
func Default(o chaos.Option) string {
	switch v := o.Default.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case time.Duration:
		return fmt.Sprintf("%q", v.String())
	case []string:
		q := make([]string, len(v))
		for i, s := range v {
			q[i] = fmt.Sprintf("%q", s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	case []int64:
		q := make([]string, len(v))
		for i, n := range v {
			q[i] = fmt.Sprint(n)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	return fmt.Sprint(o.Default)
}

func wrap(s string, width int) string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = word
			continue
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
