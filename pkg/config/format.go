package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/tlsroute"
)

// Format renders a configuration as HCL that Parse reads back to the same
// File. Route settings and options left at their defaults are omitted, so a
// converted .ini file shows only what it sets. Values are written as they
// are: a token read through env() is written out in clear; only ConvertINI
// keeps an .ini file's ${NAME} as env("NAME").
func Format(f *File) []byte {
	out := hclwrite.NewEmptyFile()
	body := out.Body()
	if x, ok := f.exprs["seed"]; ok {
		body.SetAttributeRaw("seed", exprTokens(x))
	} else if f.Seed != 0 {
		body.SetAttributeRaw("seed", numberTokens(strconv.FormatUint(f.Seed, 10)))
	}
	if f.Drain != DefaultDrain {
		body.SetAttributeRaw("drain", valueTokens(f.Drain))
	}
	if !f.Watch {
		body.SetAttributeValue("watch", cty.False)
	}
	if len(body.Attributes()) > 0 {
		body.AppendNewline()
	}

	admin := body.AppendNewBlock("admin", nil).Body()
	if x, ok := f.exprs["admin.listen"]; ok {
		admin.SetAttributeRaw("listen", exprTokens(x))
	} else {
		admin.SetAttributeValue("listen", cty.StringVal(f.Admin.Listen))
	}
	if f.Admin.Token != "" {
		admin.SetAttributeValue("token", cty.StringVal(f.Admin.Token))
	}
	if len(f.Admin.AllowedHosts) > 0 {
		hosts := make([]cty.Value, len(f.Admin.AllowedHosts))
		for i, h := range f.Admin.AllowedHosts {
			hosts[i] = cty.StringVal(h)
		}
		admin.SetAttributeValue("allowed_hosts", cty.ListVal(hosts))
	}
	body.AppendNewline()

	if f.Toxiproxy.Listen != "" {
		toxi := body.AppendNewBlock("toxiproxy", nil).Body()
		toxi.SetAttributeValue("listen", cty.StringVal(f.Toxiproxy.Listen))
		if f.Toxiproxy.Token != "" {
			toxi.SetAttributeValue("token", cty.StringVal(f.Toxiproxy.Token))
		}
		body.AppendNewline()
	}

	log := body.AppendNewBlock("log", nil).Body()
	log.SetAttributeValue("level", cty.StringVal(f.Log.Level))
	log.SetAttributeValue("format", cty.StringVal(f.Log.Format))

	for _, r := range f.Routes {
		body.AppendNewline()
		formatRoute(body.AppendNewBlock("route", []string{r.Name}).Body(), &r, f.exprs)
	}
	return hclwrite.Format(out.Bytes())
}

// formatRoute writes a route; exprs replaces values a converted .ini file
// took from the environment.
func formatRoute(body *hclwrite.Body, r *Route, exprs map[string]string) {
	body.SetAttributeValue("listen", cty.StringVal(r.Listen))
	body.SetAttributeValue("backend", cty.StringVal(r.Backend))
	for attr, path := range map[string]string{"listen": "route.listen", "backend": "route.backend"} {
		if x, ok := exprs[path]; ok {
			body.SetAttributeRaw(attr, exprTokens(x))
		}
	}
	// The default protocol is left implied, as a file would usually say it.
	if r.Protocol != DefaultProtocol && r.Protocol != "" {
		body.SetAttributeValue("protocol", cty.StringVal(r.Protocol))
	}
	if r.Timeout != 0 {
		body.SetAttributeRaw("timeout", valueTokens(r.Timeout))
	}
	if r.ConnectTimeout != DefaultConnectTimeout {
		body.SetAttributeRaw("connect_timeout", valueTokens(r.ConnectTimeout))
	}
	if x, ok := exprs["route.timeout"]; ok {
		// The original bounded the dial with its one timeout.
		body.SetAttributeRaw("timeout", exprTokens(x))
		body.SetAttributeRaw("connect_timeout", exprTokens(x))
	}
	if r.MaxConnections != 0 {
		body.SetAttributeRaw("max_connections", numberTokens(strconv.Itoa(r.MaxConnections)))
	}
	if r.Default {
		body.SetAttributeValue("default", cty.True)
	}

	var decl chaos.Options
	if spec, ok := chaos.LookupProtocol(r.Protocol); ok {
		decl = spec.Options
	}
	if names := withExprs(setOptions(decl, r.ProtocolOptions), decl, exprs, "protocol."+r.Protocol+"."); len(names) > 0 {
		body.AppendNewline()
		opts := body.AppendNewBlock("protocol_options", nil).Body()
		for _, n := range names {
			if x, ok := exprs["protocol."+r.Protocol+"."+n]; ok {
				opts.SetAttributeRaw(n, exprTokens(x))
				continue
			}
			opts.SetAttributeRaw(n, valueTokens(r.ProtocolOptions[n]))
		}
	}

	for _, t := range []struct {
		name string
		decl chaos.Options
		v    chaos.Values
	}{{"tls", tlsroute.ServerOptions, r.TLS}, {"backend_tls", tlsroute.BackendOptions, r.BackendTLS}} {
		if t.v == nil {
			continue
		}
		body.AppendNewline()
		tb := body.AppendNewBlock(t.name, nil).Body()
		for _, n := range setOptions(t.decl, t.v) {
			tb.SetAttributeRaw(n, valueTokens(t.v[n]))
		}
	}

	for _, b := range r.Behaviors {
		body.AppendNewline()
		bb := body.AppendNewBlock("behavior", []string{b.Name}).Body()
		bb.SetAttributeRaw(percentAttr, valueTokens(b.Percent))
		var decl chaos.Options
		if spec, ok := chaos.LookupBehavior(b.Name); ok {
			decl = spec.Options
		}
		for _, n := range withExprs(setOptions(decl, b.Options), decl, exprs, "behavior."+b.Name+".") {
			if x, ok := exprs["behavior."+b.Name+"."+n]; ok {
				bb.SetAttributeRaw(n, exprTokens(x))
				continue
			}
			bb.SetAttributeRaw(n, valueTokens(b.Options[n]))
		}
		if !b.Match.IsZero() {
			formatMatch(bb.AppendNewBlock(matchBlock, nil).Body(), b.Match)
		}
	}
}

func formatMatch(body *hclwrite.Body, m chaos.MatchSpec) {
	for _, l := range []struct {
		name string
		list []string
	}{{"method", m.Methods}, {"path", m.Paths}, {"command", m.Commands},
		{"sql", m.SQL}, {"database", m.Databases}, {"user", m.Users}} {
		if len(l.list) > 0 {
			body.SetAttributeRaw(l.name, valueTokens(l.list))
		}
	}
	if len(m.Headers) > 0 {
		h := map[string]cty.Value{}
		for k, v := range m.Headers {
			h[k] = cty.StringVal(v)
		}
		body.SetAttributeValue("header", cty.MapVal(h))
	}
}

// withExprs adds to names the declared options that exprs holds under
// prefix, in declaration order.
func withExprs(names []string, decl chaos.Options, exprs map[string]string, prefix string) []string {
	for _, o := range decl {
		if _, ok := exprs[prefix+o.Name]; ok && !slices.Contains(names, o.Name) {
			names = append(names, o.Name)
		}
	}
	return names
}

// exprTokens are the tokens of an HCL expression written as text.
func exprTokens(x string) hclwrite.Tokens {
	f, diags := hclwrite.ParseConfig([]byte("x = "+x+"\n"), "", hcl.InitialPos)
	if diags.HasErrors() {
		panic(fmt.Sprintf("config: expression %q does not parse: %s", x, diags))
	}
	return f.Body().GetAttribute("x").Expr().BuildTokens(nil)
}

// setOptions lists the options worth writing: those that differ from their
// declared default, in declaration order, then any undeclared ones sorted.
func setOptions(decl chaos.Options, v chaos.Values) []string {
	var names []string
	for _, o := range decl {
		if x, ok := v[o.Name]; ok && !reflect.DeepEqual(x, o.Default) {
			names = append(names, o.Name)
		}
	}
	var rest []string
	for n := range v {
		if _, ok := decl.Lookup(n); !ok && n != percentAttr {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(names, rest...)
}

// valueTokens writes an option value as an HCL literal. Numbers are written
// in their shortest exact decimal form (hclwrite would write a float64's
// full binary expansion), durations as Go duration strings.
func valueTokens(v any) hclwrite.Tokens {
	switch x := v.(type) {
	case bool:
		return hclwrite.TokensForValue(cty.BoolVal(x))
	case string:
		return hclwrite.TokensForValue(cty.StringVal(x))
	case int:
		return numberTokens(strconv.Itoa(x))
	case int64:
		return numberTokens(strconv.FormatInt(x, 10))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			break
		}
		return numberTokens(strconv.FormatFloat(x, 'f', -1, 64))
	case time.Duration:
		return hclwrite.TokensForValue(cty.StringVal(formatDuration(x)))
	case []string:
		elems := make([]hclwrite.Tokens, len(x))
		for i, e := range x {
			elems[i] = valueTokens(e)
		}
		return hclwrite.TokensForTuple(elems)
	case []int64:
		elems := make([]hclwrite.Tokens, len(x))
		for i, e := range x {
			elems[i] = valueTokens(e)
		}
		return hclwrite.TokensForTuple(elems)
	case []any:
		elems := make([]hclwrite.Tokens, len(x))
		for i, e := range x {
			elems[i] = valueTokens(e)
		}
		return hclwrite.TokensForTuple(elems)
	}
	return hclwrite.TokensForValue(cty.StringVal(fmt.Sprint(v)))
}

func numberTokens(text string) hclwrite.Tokens {
	var toks hclwrite.Tokens
	if t, neg := strings.CutPrefix(text, "-"); neg {
		toks = append(toks, &hclwrite.Token{Type: hclsyntax.TokenMinus, Bytes: []byte("-")})
		text = t
	}
	return append(toks, &hclwrite.Token{Type: hclsyntax.TokenNumberLit, Bytes: []byte(text)})
}

// formatDuration writes "1m" and "1h30m" rather than Go's "1m0s" and
// "1h30m0s"; both parse back to the same duration.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func trimFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
