package experiment

import (
	"fmt"
	"html/template"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
)

// HTML is report.html: one self-contained page (no script, no external
// asset) with the verdict, the SLOs, and an SVG timeline of the run — the
// phases, a band per route for each fault injected, and beneath them each
// probe's latency percentiles and error rate per second, with the SLO
// verdicts marked over the phases they judge.
func HTML(res *Result) string {
	var b strings.Builder
	if err := page.Execute(&b, view{Result: res, Timeline: timeline(res)}); err != nil {
		return "<!doctype html><title>report</title><pre>" + template.HTMLEscapeString(err.Error()) + "</pre>"
	}
	return b.String()
}

type view struct {
	*Result
	Timeline template.HTML
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"since": func(from, t time.Time) string {
		return "+" + t.Sub(from).Round(100*time.Millisecond).String()
	},
	"span": func(a, b time.Time) string { return b.Sub(a).Round(100 * time.Millisecond).String() },
	"mix":  MixText,
	"utc":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"all":  orAll,
	"dur":  func(d api.Duration) string { return time.Duration(d).String() },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Experiment}}: {{.State}}</title>
<style>
:root{--ok:#1a7f37;--bad:#cf222e;--ink:#1f2328;--mute:#656d76;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);margin:0;background:#fff}
main{max-width:1040px;margin:0 auto;padding:28px 24px 48px}
h1{font-size:24px;margin:0 0 4px;display:flex;gap:12px;align-items:center}
h2{font-size:16px;margin:28px 0 10px}
.badge{font-size:13px;font-weight:600;padding:3px 10px;border-radius:999px;color:#fff;text-transform:uppercase;letter-spacing:.04em}
.passed{background:var(--ok)}.failed,.error{background:var(--bad)}.stopped,.lost{background:#9a6700}
.meta{color:var(--mute)}
.why{border-left:3px solid var(--bad);background:#fff5f5;padding:8px 12px;margin:12px 0}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--bg);font-weight:600}
.v-ok{color:var(--ok);font-weight:700}.v-bad{color:var(--bad);font-weight:700}
.card{border:1px solid var(--line);border-radius:8px;padding:12px;background:#fff}
svg{display:block;width:100%;height:auto}
svg text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;fill:var(--ink)}
svg .axis{stroke:#8c959f;stroke-width:1}
svg .grid{stroke:#eaeef2;stroke-width:1}
svg .mute{fill:var(--mute)}
code{font-size:12px;background:var(--bg);padding:1px 4px;border-radius:4px}
</style></head>
<body><main>
<h1>{{.Experiment}} <span class="badge {{.State}}">{{.State}}</span></h1>
<div class="meta">run {{.Run}} · seed {{.Seed}} · {{utc .Started}} · {{span .Started .Ended}}</div>
{{if .Error}}<div class="why">{{.Error}}</div>{{end}}
{{if .SLOs}}<h2>SLOs</h2>
<table><tr><th></th><th>SLO</th><th>probe</th><th>during</th><th>measured</th></tr>
{{range .SLOs}}<tr><td class="{{if .OK}}v-ok{{else}}v-bad{{end}}">{{if .OK}}✔ held{{else}}✘ failed{{end}}</td><td>{{.Name}}</td><td>{{.Probe}}</td><td>{{all .During}}</td><td>{{range $i, $c := .Checks}}{{if $i}}<br>{{end}}<span class="{{if $c.OK}}v-ok{{else}}v-bad{{end}}">{{$c.Text}}</span>{{end}}</td></tr>
{{end}}</table>{{end}}
<h2>Timeline</h2>
<div class="card">{{.Timeline}}</div>
<h2>Phases</h2>
<table><tr><th>phase</th><th>from</th><th>for</th><th>mix applied</th><th>route counters: requests / faults</th></tr>
{{range .Phases}}<tr><td>{{.Name}}</td><td>{{since $.Started .Start}}</td><td>{{span .Start .End}}</td><td>{{range .Mixes}}<code>{{.Route}}</code> {{mix .Mix}}<br>{{else}}–{{end}}</td><td>{{range .Routes}}<code>{{.Route}}</code> {{.Requests}} / {{.Faults}}<br>{{else}}–{{end}}</td></tr>
{{end}}</table>
<h2>Probes</h2>
<table><tr><th>probe</th><th>kind</th><th>interval × concurrency</th><th>attempts</th><th>errors</th><th>examples of errors</th></tr>
{{range .Probes}}<tr><td>{{.Name}}</td><td>{{.Kind}}</td><td>{{dur .Interval}} × {{.Concurrency}}</td><td>{{.Requests}}</td><td>{{.Errors}}</td><td>{{range .FirstErrors}}<code>{{.}}</code><br>{{else}}–{{end}}</td></tr>
{{end}}</table>
</main></body></html>
`))

// Colours of the timeline, one per step in turn.
var stepColours = []string{"#fb8f44", "#cf222e", "#8250df", "#bf3989", "#0969da", "#1a7f37"}

// timeline draws the run as SVG.
func timeline(res *Result) template.HTML {
	const (
		width  = 980.0
		left   = 120.0
		right  = 16.0
		rowH   = 26.0
		chartH = 150.0
		errH   = 60.0
	)
	total := res.Ended.Sub(res.Started).Seconds()
	if total <= 0 {
		total = 1
	}
	plotW := width - left - right
	x := func(t time.Time) float64 {
		return left + plotW*math.Max(0, math.Min(1, t.Sub(res.Started).Seconds()/total))
	}
	xs := func(s float64) float64 { return left + plotW*math.Max(0, math.Min(1, s/total)) }
	var svg strings.Builder
	y := 8.0
	w := func(format string, args ...any) { fmt.Fprintf(&svg, format, args...) }

	colour := map[string]string{}
	for _, p := range res.Phases {
		if p.Kind == "step" {
			if _, ok := colour[p.Name]; !ok {
				colour[p.Name] = stepColours[len(colour)%len(stepColours)]
			}
		}
	}

	// Phases.
	w(`<text x="%.1f" y="%.1f" class="mute">phases</text>`, 8.0, y+17)
	for _, p := range res.Phases {
		fill, ink := "#eaeef2", "#1f2328"
		if c, ok := colour[p.Name]; ok {
			fill, ink = c, "#fff"
		} else if p.Kind == "recovery" {
			fill = "#ddf4ff"
		}
		x0, x1 := x(p.Start), x(p.End)
		w(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="3" fill="%s"><title>%s</title></rect>`, x0, y, math.Max(1, x1-x0-1), rowH-4, fill, esc(p.Name+" "+p.End.Sub(p.Start).Round(100*time.Millisecond).String()))
		w(`<text x="%.1f" y="%.1f" style="fill:%s">%s</text>`, x0+5, y+16, ink, esc(clip(strings.ReplaceAll(p.Name, "_", " "), x1-x0)))
	}
	y += rowH + 6

	// A band per route for each step that set a mix on it.
	var routes []string
	for _, p := range res.Phases {
		for _, c := range p.Routes {
			if !slices.Contains(routes, c.Route) {
				routes = append(routes, c.Route)
			}
		}
		for _, m := range p.Mixes {
			if !slices.Contains(routes, m.Route) {
				routes = append(routes, m.Route)
			}
		}
	}
	for _, r := range routes {
		w(`<text x="8" y="%.1f">route %s</text>`, y+16, esc(r))
		w(`<line class="grid" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, left, width-right, y+rowH/2, y+rowH/2)
		for _, p := range res.Phases {
			for _, m := range p.Mixes {
				if m.Route != r {
					continue
				}
				x0, x1 := x(p.Start), x(p.End)
				label := MixText(m.Mix)
				faults := ""
				for _, c := range p.Routes {
					if c.Route == r {
						faults = fmt.Sprintf(", %d faults in %d requests", c.Faults, c.Requests)
					}
				}
				w(`<rect class="fault" x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="3" fill="%s" fill-opacity=".85"><title>%s</title></rect>`, x0, y+3, math.Max(1, x1-x0-1), rowH-8, colour[p.Name], esc(r+": "+label+faults))
				w(`<text x="%.1f" y="%.1f" style="fill:#fff">%s</text>`, x0+5, y+16, esc(clip(label, x1-x0)))
			}
		}
		y += rowH
	}
	y += 10

	// Time axis ticks, shared by the charts beneath.
	step := tickStep(total)
	axis := func(top, bottom float64) {
		for s := 0.0; s <= total+1e-9; s += step {
			w(`<line class="grid" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, xs(s), xs(s), top, bottom)
		}
		w(`<line class="axis" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, left, width-right, bottom, bottom)
	}

	for _, pr := range res.Probes {
		// SLO verdicts over the phases they judge.
		for _, s := range res.SLOs {
			if s.Probe != pr.Name {
				continue
			}
			for _, p := range res.Phases {
				if s.During != "" && p.Name != s.During {
					continue
				}
				c := "#1a7f37"
				mark := "✔ "
				if !s.OK {
					c, mark = "#cf222e", "✘ "
				}
				x0, x1 := x(p.Start), x(p.End)
				w(`<g class="slo"><rect x="%.1f" y="%.1f" width="%.1f" height="16" rx="3" fill="%s" fill-opacity=".12" stroke="%s"/><text x="%.1f" y="%.1f" style="fill:%s;font-weight:600">%s</text></g>`,
					x0, y, math.Max(1, x1-x0-1), c, c, x0+4, y+12, c, esc(clip(mark+s.Name, x1-x0)))
			}
			y += 20
		}

		// Latency percentiles.
		top, bottom := y+8, y+8+chartH
		maxMS := 1.0
		for _, s := range pr.Seconds {
			maxMS = math.Max(maxMS, s.P99)
		}
		maxMS = niceCeil(maxMS)
		yv := func(ms float64) float64 { return bottom - chartH*math.Min(1, ms/maxMS) }
		w(`<text x="8" y="%.1f">probe %s</text><text x="8" y="%.1f" class="mute">latency, ms</text>`, top+12, esc(pr.Name), top+28)
		axis(top, bottom)
		for _, f := range []float64{0, 0.5, 1} {
			w(`<line class="grid" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/><text x="%.1f" y="%.1f" class="mute" text-anchor="end">%s</text>`,
				left, width-right, yv(maxMS*f), yv(maxMS*f), left-6, yv(maxMS*f)+4, trimMS(maxMS*f))
		}
		for _, l := range []struct {
			name, colour string
			of           func(Second) float64
		}{
			{"p50", "#0969da", func(s Second) float64 { return s.P50 }},
			{"p95", "#8250df", func(s Second) float64 { return s.P95 }},
			{"p99", "#bf3989", func(s Second) float64 { return s.P99 }},
		} {
			var pts []string
			for _, s := range pr.Seconds {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", xs(float64(s.T)+0.5), yv(l.of(s))))
			}
			if len(pts) > 0 {
				w(`<polyline class="latency" fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round" points="%s"><title>%s</title></polyline>`, l.colour, strings.Join(pts, " "), l.name)
			}
		}
		lx := width - right - 150
		for i, n := range []string{"p50", "p95", "p99"} {
			c := []string{"#0969da", "#8250df", "#bf3989"}[i]
			w(`<rect x="%.1f" y="%.1f" width="10" height="3" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`, lx+float64(i)*50, top+4, c, lx+float64(i)*50+14, top+9, n)
		}

		// Error rate per second.
		etop, ebottom := bottom+12, bottom+12+errH
		w(`<text x="8" y="%.1f" class="mute">errors, %%</text>`, etop+14)
		axis(etop, ebottom)
		w(`<text x="%.1f" y="%.1f" class="mute" text-anchor="end">100</text>`, left-6, etop+4)
		bw := math.Max(1, plotW/total-2)
		for _, s := range pr.Seconds {
			if s.Requests == 0 || s.Errors == 0 {
				continue
			}
			h := errH * float64(s.Errors) / float64(s.Requests)
			w(`<rect class="errors" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#cf222e"><title>%d of %d failed</title></rect>`, xs(float64(s.T))+1, ebottom-h, bw, h, s.Errors, s.Requests)
		}
		y = ebottom + 4
		for s := 0.0; s <= total+1e-9; s += step {
			w(`<text x="%.1f" y="%.1f" class="mute" text-anchor="middle">%ss</text>`, xs(s), y+12, trimMS(s))
		}
		y += 24
	}
	return template.HTML(fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" role="img" aria-label="timeline of the run">%s</svg>`, width, y, svg.String()))
}

func esc(s string) string { return template.HTMLEscapeString(s) }

// clip shortens a label to what fits in width pixels.
func clip(s string, width float64) string {
	n := int((width - 10) / 6.5)
	r := []rune(s)
	switch {
	case n <= 1:
		return ""
	case len(r) <= n:
		return s
	}
	return string(r[:n-1]) + "…"
}

// tickStep picks a tick spacing giving about ten ticks.
func tickStep(total float64) float64 {
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600} {
		if total/s <= 12 {
			return s
		}
	}
	return 1800
}

// niceCeil rounds a maximum up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func trimMS(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", v), "0"), ".")
}
