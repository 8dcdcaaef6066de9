package sse

// This file fills in package door's functions: how the Echo front doors
// reach what a net/http program does not need.

import (
	"net/http"

	"github.com/echosse/echo-sse/internal/door"
)

func init() {
	door.New = func(cfg any, h door.Hooks) (any, error) {
		srv, err := newServer(cfg.(Config), h)
		if err != nil {
			return nil, err // not a typed nil in the any
		}
		return srv, nil
	}
	door.Open = func(srv any, w http.ResponseWriter, r *http.Request, o *door.Options) (any, error) {
		s, err := srv.(*Server).open(w, r, o)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	door.Status = status
	door.Refuse = func(srv any, w http.ResponseWriter) (bool, error) { return srv.(*Server).refuse(w) }
	door.Finish = func(s any, err error) error { return s.(*Stream).end(err) }
	door.Panicked = func(s any) { s.(*Stream).end(ErrHandlerPanicked) }
	door.PumpDelay = &pumpDelay
	door.CompressorsInUse = compressorsInUse.Load
}
