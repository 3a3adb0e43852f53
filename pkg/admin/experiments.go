package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
)

// Experiments is what the admin API needs to list, start, watch and stop
// chaos experiments, and to take the reports of runners outside vaurien.
// Errors choose their status as the Controller's do (404 unknown, 409
// conflict).
type Experiments interface {
	List() []api.Experiment
	Status(name string) (api.ExperimentStatus, error)
	Start(name string) (api.ExperimentStatus, error)
	Stop(name string) (api.ExperimentStatus, error)
	Report(run api.ExperimentRun) (api.ExperimentRunAnswer, error)
	// ReportFile is the path of a file of an experiment's last report.
	ReportFile(name, file string) (string, error)
}

// maxLease bounds how long a runner's claim on routes outlives its last
// report.
const maxLease = time.Minute

func (s *Server) experimentRoutes(e *echo.Echo) {
	e.GET("/experiments", s.listExperiments)
	e.GET("/experiments/:name", s.getExperiment)
	e.POST("/experiments/:name/start", s.startExperiment)
	e.POST("/experiments/:name/stop", s.stopExperiment)
	e.PUT("/experiments/:name/run", s.reportExperiment)
	e.GET("/experiments/:name/report/:file", s.getExperimentReport)
}

func (s *Server) experiments() (Experiments, error) {
	if s.cfg.Experiments == nil {
		return nil, echo.NewHTTPError(http.StatusNotFound, "experiments are not enabled in this process")
	}
	return s.cfg.Experiments, nil
}

func (s *Server) listExperiments(c *echo.Context) error {
	x, err := s.experiments()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.Experiments{Experiments: x.List()})
}

func (s *Server) getExperiment(c *echo.Context) error {
	x, err := s.experiments()
	if err != nil {
		return err
	}
	st, err := x.Status(c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

// reportTypes are the media types of the report's files.
var reportTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".md":   "text/markdown; charset=utf-8",
	".json": "application/json",
}

func (s *Server) getExperimentReport(c *echo.Context) error {
	x, err := s.experiments()
	if err != nil {
		return err
	}
	path, err := x.ReportFile(c.Param("name"), c.Param("file"))
	if err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("the report's file %s is gone", path))
	}
	if err != nil {
		return fmt.Errorf("read the report: %w", err)
	}
	// report.html carries its style inline and no script: its own policy
	// lets that style draw, and nothing else.
	c.Response().Header().Set("Content-Security-Policy", reportPolicy)
	return c.Blob(http.StatusOK, reportTypes[filepath.Ext(path)], data)
}

func (s *Server) startExperiment(c *echo.Context) error {
	x, err := s.experiments()
	if err != nil {
		return err
	}
	st, err := x.Start(c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, st)
}

func (s *Server) stopExperiment(c *echo.Context) error {
	x, err := s.experiments()
	if err != nil {
		return err
	}
	st, err := x.Stop(c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, st)
}

func (s *Server) reportExperiment(c *echo.Context) error {
	x, err := s.experiments()
	if err != nil {
		return err
	}
	var run api.ExperimentRun
	if err := decodeJSON(c, &run); err != nil {
		return err
	}
	name := c.Param("name")
	switch st := run.Status; {
	case st.Experiment != name:
		return badRequest(fmt.Sprintf("status.experiment %q does not match the path's experiment %q", st.Experiment, name))
	case st.Run == "":
		return badRequest(`status.run is required: an id that tells this run from others`)
	case st.State != api.StateRunning && st.State != api.StatePassed && st.State != api.StateFailed && st.State != api.StateStopped && st.State != api.StateError:
		return badRequest(fmt.Sprintf("status.state %q: want running, passed, failed, stopped or error", st.State))
	case run.Lease <= 0 || time.Duration(run.Lease) > maxLease:
		return badRequest(fmt.Sprintf("lease %s: want a positive duration of at most %s", time.Duration(run.Lease), maxLease))
	}
	answer, err := x.Report(run)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, answer)
}
