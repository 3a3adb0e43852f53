package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vaurien-go/vaurien/pkg/client"
)

func printExperiments(w io.Writer, es []client.Experiment) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EXPERIMENT\tIN FILE\tROUTES\tDURATION\tLAST RUN\tSTATE\tSTEP")
	for _, e := range es {
		run, state, step := "-", "idle", "-"
		if e.Last != nil {
			run, state = e.Last.Run, e.Last.State
			if e.Last.Step != "" {
				step = e.Last.Step
			}
		}
		d := "-"
		if e.Duration > 0 {
			d = time.Duration(e.Duration).String()
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.InConfig, strings.Join(e.Routes, ","), d, run, state, step)
	}
	tw.Flush()
}

func printExperiment(w io.Writer, st *client.ExperimentStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "experiment\t%s\n", st.Experiment)
	fmt.Fprintf(tw, "state\t%s\n", st.State)
	if st.Run != "" {
		where := "in vaurien"
		if st.Remote {
			where = "by a runner outside vaurien"
		}
		fmt.Fprintf(tw, "run\t%s (seed %d), %s, started %s\n", st.Run, st.Seed, where, st.Started.Format(time.RFC3339))
	}
	if st.Phase != "" {
		left := ""
		if st.PhaseEnds != nil {
			left = fmt.Sprintf(", %s left", time.Until(*st.PhaseEnds).Round(100*time.Millisecond))
		}
		fmt.Fprintf(tw, "phase\t%s%s\n", st.Phase, left)
	}
	fmt.Fprintf(tw, "routes\t%s\n", strings.Join(st.Routes, ", "))
	if st.Report != "" {
		fmt.Fprintf(tw, "report\t%s (the last run's, on the admin API)\n", st.Report)
	}
	if st.Error != "" {
		fmt.Fprintf(tw, "error\t%s\n", st.Error)
	}
	for _, p := range st.Probes {
		fmt.Fprintf(tw, "probe %s\t%d requests, %d errors, p99 %s\n", p.Name, p.Requests, p.Errors, time.Duration(p.P99).Round(100*time.Microsecond))
	}
	for _, s := range st.SLOs {
		verdict := "ok"
		if !s.OK {
			verdict = "FAIL"
		}
		var checks []string
		for _, c := range s.Checks {
			checks = append(checks, c.Text)
		}
		fmt.Fprintf(tw, "slo %s\t%s: %s\n", s.Name, verdict, strings.Join(checks, "; "))
	}
	tw.Flush()
}
