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
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "experiment_running",
			Help: "1 while a step of an experiment runs, 0 once it is over.",
		}, []string{LabelExperiment, LabelStep}),
		sloOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "experiment_slo_ok",
			Help: "Verdict of an experiment's SLO in its latest run: 1 held, 0 failed.",
		}, []string{LabelExperiment, LabelSLO}),
	}
}

// StepRunning sets vaurien_experiment_running for a step of an experiment.
func (m *Metrics) StepRunning(experiment, step string, running bool) {
	v := 0.0
	if running {
		v = 1
	}
	m.exp.running.WithLabelValues(experiment, step).Set(v)
}

// SLOHeld sets vaurien_experiment_slo_ok for an SLO of an experiment.
func (m *Metrics) SLOHeld(experiment, slo string, ok bool) {
	v := 0.0
	if ok {
		v = 1
	}
	m.exp.sloOK.WithLabelValues(experiment, slo).Set(v)
}
