package admin

import (
	"io/fs"
	"mime"
	"net/http"
	"path"

	"github.com/labstack/echo/v5"

	"github.com/vaurien-go/vaurien/pkg/console"
)

func (s *Server) consoleRoutes(e *echo.Echo) {
	e.GET("/", func(c *echo.Context) error { return c.Redirect(http.StatusFound, "/ui/") })
	e.GET("/ui/", func(c *echo.Context) error { return serveConsole(c, "index.html") })
	e.GET("/ui/:file", func(c *echo.Context) error { return serveConsole(c, c.Param("file")) })
}

// serveConsole sends one of the console's files. They are revalidated on
// every load, so that a page never runs with a script of another version.
func serveConsole(c *echo.Context, name string) error {
	b, err := fs.ReadFile(console.Files, name)
	if err != nil || name == "." {
		return echo.ErrNotFound
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-cache")
	return c.Blob(http.StatusOK, mime.TypeByExtension(path.Ext(name)), b)
}
