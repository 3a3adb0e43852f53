package admin

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// getCatalog serves the behavior declarations, from which the console
// builds its forms: a new behavior or option shows up there with no change
// to the page.
func (s *Server) getCatalog(c *echo.Context) error {
	return c.JSON(http.StatusOK, catalog())
}

func catalog() api.Catalog {
	specs := chaos.Behaviors()
	out := api.Catalog{Behaviors: make([]api.BehaviorDecl, 0, len(specs))}
	for _, s := range specs {
		d := api.BehaviorDecl{Name: s.Name, Doc: s.Doc, Options: make([]api.OptionDecl, 0, len(s.Options))}
		defaults := api.JSONOptions(s.Options.Defaults())
		for _, o := range s.Options {
			d.Options = append(d.Options, api.OptionDecl{
				Name: o.Name, Kind: o.Kind.String(), Default: defaults[o.Name], Doc: o.Doc,
				Choices: o.Choices, Min: o.Min, Max: o.Max, Range: o.Range(), NoEffect: o.NoEffect,
			})
		}
		out.Behaviors = append(out.Behaviors, d)
	}
	return out
}
