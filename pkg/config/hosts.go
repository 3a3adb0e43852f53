package config

import (
	"fmt"
	"net"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// hostNames reads a list of host names, each checked with a diagnostic on
// its own element when the list is written out in the file.
func (d *decoder) hostNames(expr hcl.Expression, name string) []string {
	const example = `["vaurien", "chaos.internal"]`
	if _, st := d.value(expr); st != present {
		return nil
	}
	var out []string
	check := func(s string, rng hcl.Range) {
		if err := CheckHostName(s); err != nil {
			d.errorf(rng, "Invalid host name", "Each element of %q is a host name as a browser sends it in the Host header, without scheme or port, such as %s; %s.", name, example, err)
			return
		}
		out = append(out, strings.ToLower(strings.TrimSuffix(s, ".")))
	}
	if elems, diags := hcl.ExprList(expr); !diags.HasErrors() {
		for _, e := range elems {
			if s, st := d.str(e, name, `"vaurien"`); st == present {
				check(s, e.Range())
			}
		}
		return out
	}
	// Not written as a list (env() or another function): check the value.
	v, st := d.typed(expr, name, cty.List(cty.String), example)
	if st != present {
		return nil
	}
	for _, e := range v.AsValueSlice() {
		if e.IsNull() {
			d.errorf(expr.Range(), "Invalid host name", "The list %q holds a null element; give host names such as %s.", name, example)
			continue
		}
		check(e.AsString(), expr.Range())
	}
	return out
}

// CheckHostName accepts a DNS name (letters, digits, hyphens, dots) or an
// IP address, without scheme or port.
func CheckHostName(s string) error {
	if s == "" {
		return fmt.Errorf("the name is empty")
	}
	if net.ParseIP(s) != nil {
		return nil
	}
	if strings.ContainsAny(s, ":/") {
		return fmt.Errorf("%q has a scheme, port or path: give the name alone", s)
	}
	name := strings.TrimSuffix(s, ".")
	if len(name) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", s)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q has an empty label or one longer than 63 characters", s)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("%q holds %q, which a host name cannot", s, r)
			}
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q has a label that starts or ends with a hyphen", s)
		}
	}
	return nil
}
