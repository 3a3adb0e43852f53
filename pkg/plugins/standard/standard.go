// Package standard links every built-in behavior and protocol into a
// program that imports it, the way database/sql drivers are linked: a custom
// build of vaurien imports this package plus its own plugins.
package standard

import (
	_ "github.com/vaurien-go/vaurien/pkg/behavior"          // built-in behaviors
	_ "github.com/vaurien-go/vaurien/pkg/protocol/http"     // http
	_ "github.com/vaurien-go/vaurien/pkg/protocol/memcache" // memcache
	_ "github.com/vaurien-go/vaurien/pkg/protocol/mysql"    // mysql
	_ "github.com/vaurien-go/vaurien/pkg/protocol/postgres" // postgres
	_ "github.com/vaurien-go/vaurien/pkg/protocol/redis"    // redis
	_ "github.com/vaurien-go/vaurien/pkg/protocol/tcp"      // tcp, smtp
)
