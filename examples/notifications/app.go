package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	echojwt "github.com/labstack/echo-jwt/v4"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

// config is what the app needs; main fills it from flags.
type config struct {
	Secret         []byte        // HMAC key the session tokens are signed with
	Origin         string        // the one other origin allowed to read the API with credentials
	TokenTTL       time.Duration // how long a session token is valid
	StreamsPerUser int           // streams one user may hold open at once
	Backend        broker.Backend
	Log            *slog.Logger
}

// errTokenExpired ends a stream when the token that opened it expires.
var errTokenExpired = errors.New("session token expired")

// broadcastTopic reaches every signed-in user; each user also has a topic
// of their own, "user:" and their name.
const broadcastTopic = "broadcast"

// app is the server: its routes, its broker and the open streams per user.
type app struct {
	cfg config
	b   *broker.Broker

	mu      sync.Mutex
	streams map[string]int // open streams per user
}

// newApp returns the Echo server and the broker it publishes through;
// close the broker after the server has shut down.
func newApp(cfg config) (*echo.Echo, *broker.Broker, error) {
	b, err := broker.New(broker.Config{Backend: cfg.Backend})
	if err != nil {
		return nil, nil, err
	}
	a := &app{cfg: cfg, b: b, streams: map[string]int{}}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true

	// The order matters; README.md, "Middleware order", says why.
	e.Use(middleware.Recover())
	e.Use(middleware.RequestID())
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogURI: true, LogMethod: true, LogError: true, LogRequestID: true,
		HandleError: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			// The query may hold a lastEventID, never a token.
			attrs := []any{"id", v.RequestID, "method", v.Method, "uri", v.URI, "status", v.Status}
			if v.Error != nil {
				attrs = append(attrs, "err", v.Error.Error())
			}
			cfg.Log.Info("request", attrs...)
			return nil
		},
	}))
	e.Use(middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins:     []string{cfg.Origin}, // exact: browsers refuse * with credentials
		AllowCredentials: true,
	}))
	e.Use(echojwt.WithConfig(echojwt.Config{
		Skipper:       func(c echo.Context) bool { return c.Path() == "/login" },
		SigningKey:    cfg.Secret,
		SigningMethod: "HS256",
		TokenLookup:   "cookie:session", // EventSource cannot send Authorization
		NewClaimsFunc: func(echo.Context) jwt.Claims { return new(jwt.RegisteredClaims) },
		ErrorHandler: func(c echo.Context, err error) error {
			return echo.NewHTTPError(http.StatusUnauthorized, "sign in").WithInternal(err)
		},
	}))
	e.Use(middleware.GzipWithConfig(middleware.GzipConfig{
		Skipper: func(c echo.Context) bool { return c.Path() == "/events" }, // streams compress themselves
	}))
	e.Use(middleware.ContextTimeoutWithConfig(middleware.ContextTimeoutConfig{
		Skipper: func(c echo.Context) bool { return c.Path() == "/events" },
		Timeout: 10 * time.Second,
	}))
	e.Use(echosse.Middleware(echosse.Config{
		Compress:      true,
		ShutdownRetry: 2 * time.Second, // behind a load balancer: reconnect to another instance
	}))

	e.POST("/login", a.login)
	e.POST("/refresh", a.refresh)
	e.GET("/events", a.events)
	e.POST("/notify", a.notify)
	return e, b, nil
}

// claims returns the verified claims echo-jwt left in the context.
func claims(c echo.Context) *jwt.RegisteredClaims {
	return c.Get("user").(*jwt.Token).Claims.(*jwt.RegisteredClaims)
}

// login signs anyone in under the name they give: a demo, with no
// password. It sets the session cookie a page's EventSource sends.
func (a *app) login(c echo.Context) error {
	user := strings.TrimSpace(c.FormValue("user"))
	if user == "" || strings.ContainsAny(user, ":\r\n") {
		return echo.NewHTTPError(http.StatusBadRequest, "user: a name without colons or line breaks")
	}
	return a.setSession(c, user)
}

// refresh gives a signed-in user a fresh token; pages call it before the
// old one expires, so that their next reconnection is accepted.
func (a *app) refresh(c echo.Context) error { return a.setSession(c, claims(c).Subject) }

func (a *app) setSession(c echo.Context, user string) error {
	exp := time.Now().Add(a.cfg.TokenTTL)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   user,
		ExpiresAt: jwt.NewNumericDate(exp),
	}).SignedString(a.cfg.Secret)
	if err != nil {
		return err
	}
	c.SetCookie(&http.Cookie{
		Name: "session", Value: tok, Path: "/", Expires: exp,
		HttpOnly: true, Secure: c.Scheme() == "https", SameSite: http.SameSiteLaxMode,
	})
	return c.JSON(http.StatusOK, map[string]any{"user": user, "expires": exp})
}

// events streams the user's own notifications and the broadcasts, and
// ends the stream when the token that opened it expires.
func (a *app) events(c echo.Context) error {
	cl := claims(c)
	user := cl.Subject
	if !a.take(user) {
		// The same jittered retry answer as over MaxClients.
		return fmt.Errorf("user %s has %d streams open: %w", user, a.cfg.StreamsPerUser, echosse.ErrTooManyClients)
	}
	s, err := echosse.Open(c)
	if err != nil {
		a.give(user)
		return err
	}
	expiry := time.AfterFunc(time.Until(cl.ExpiresAt.Time), func() { s.Abort(errTokenExpired) })
	s.AfterFunc(func() {
		expiry.Stop()
		a.give(user)
	})
	err = a.b.Subscribe(s, "user:"+user, broadcastTopic)
	gap := errors.Is(err, broker.ErrGap)
	if err != nil && !gap {
		return err
	}
	// The request logger logs a stream when it ends, which may be hours
	// later, or never if the process dies: say where and from which event
	// it starts.
	a.cfg.Log.Info("stream open", "id", c.Response().Header().Get(echo.HeaderXRequestID),
		"user", user, "lastEventID", s.LastEventID(), "gap", gap)
	if gap {
		return s.Send(event.Event{Type: "reload", Data: ""}) // it missed some: refetch
	}
	return nil
}

// notify publishes a notification to one user (to) or, without to, to
// everyone.
func (a *app) notify(c echo.Context) error {
	text := c.FormValue("text")
	if text == "" {
		return echo.NewHTTPError(http.StatusBadRequest, "text is required")
	}
	topic := broadcastTopic
	if to := c.FormValue("to"); to != "" {
		topic = "user:" + to
	}
	data := map[string]string{"from": claims(c).Subject, "text": text}
	id, err := a.b.Publish(c.Request().Context(), topic, event.Event{Type: "notification", Data: data})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]string{"id": id})
}

// take counts one more stream for user, unless they hold the most already.
func (a *app) take(user string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.streams[user] >= a.cfg.StreamsPerUser {
		return false
	}
	a.streams[user]++
	return true
}

// give counts one stream of user's less.
func (a *app) give(user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.streams[user]--; a.streams[user] <= 0 {
		delete(a.streams, user)
	}
}
