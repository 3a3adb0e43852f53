package metrics

import "github.com/prometheus/client_golang/prometheus"

// Label names of the experiment metrics.
const (
	LabelExperiment = "experiment"
	LabelStep       = "step"
	LabelSLO        = "slo"
)

// experiments are the collectors of experiment runs. Their label values
// are experiment, step and SLO names from experiment files, which are
// checked names a person wrote, not request data.
type experiments struct {
	running *prometheus.GaugeVec
	sloOK   *prometheus.GaugeVec
}

func newExperiments() experiments {
	return experiments{
		running: gaugeVec("experiment_running",
			"1 while a step of an experiment runs, 0 once it is over.",
			LabelExperiment, LabelStep),
		sloOK: gaugeVec("experiment_slo_ok",
			"Verdict of an experiment's SLO in its latest run: 1 held, 0 failed.",
			LabelExperiment, LabelSLO),
	}
}

// StepRunning sets vaurien_experiment_running for a step of an experiment.
func (m *Metrics) StepRunning(experiment, step string, running bool) {
	m.exp.running.WithLabelValues(experiment, step).Set(one(running))
}

// SLOHeld sets vaurien_experiment_slo_ok for an SLO of an experiment.
func (m *Metrics) SLOHeld(experiment, slo string, ok bool) {
	m.exp.sloOK.WithLabelValues(experiment, slo).Set(one(ok))
}

// one is a yes-or-no gauge's value.
func one(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
