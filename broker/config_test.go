package broker

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestNewConfig(t *testing.T) {
	backend := newMemory(10, -1, time.Now)
	tests := []struct {
		name        string
		givenConfig Config
		wantErr     string // a part of the error; "" for none
	}{
		{name: "zero value", givenConfig: Config{}},
		{name: "all set", givenConfig: Config{HistorySize: 5, HistoryAge: time.Second, SlowClient: SlowClientDrop, ErrorHandler: func(error) {}}},
		{name: "no age limit", givenConfig: Config{HistoryAge: -1}},
		{name: "backend", givenConfig: Config{Backend: backend}},
		{name: "backend with MaxBehind", givenConfig: Config{Backend: backend, MaxBehind: 50}},
		{name: "negative MaxBehind", givenConfig: Config{MaxBehind: -1}, wantErr: "MaxBehind must not be negative"},
		{name: "huge MaxBehind", givenConfig: Config{MaxBehind: math.MaxInt}, wantErr: "MaxBehind must be at most 10,000,000"},
		{name: "negative size", givenConfig: Config{HistorySize: -1}, wantErr: "HistorySize must not be negative"},
		{name: "huge size", givenConfig: Config{HistorySize: math.MaxInt}, wantErr: "HistorySize must be at most 10,000,000"},
		{name: "age of 56 years", givenConfig: Config{HistoryAge: 56 * 365 * 24 * time.Hour}, wantErr: "HistoryAge must be at most 10 years"},
		{name: "largest age", givenConfig: Config{HistoryAge: math.MaxInt64}, wantErr: "HistoryAge must be at most 10 years"},
		{name: "unknown policy", givenConfig: Config{SlowClient: 7}, wantErr: "SlowClient must be"},
		{name: "backend with size", givenConfig: Config{Backend: backend, HistorySize: 3}, wantErr: "backend's own limits"},
		{name: "backend with age", givenConfig: Config{Backend: backend, HistoryAge: time.Hour}, wantErr: "backend's own limits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(tt.givenConfig)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				b.Close()
				return
			}
			if err == nil {
				b.Close()
				t.Fatalf("got nil, want an error containing %q", tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "broker: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %q, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HistorySize != 1000 || cfg.MaxBehind != 1000 || cfg.HistoryAge != time.Hour || cfg.SlowClient != SlowClientAbort || cfg.ErrorHandler == nil || cfg.timeNow == nil {
		t.Fatalf("got %+v", cfg)
	}
	if cfg, _ := (Config{HistorySize: 20}).withDefaults(); cfg.MaxBehind != 20 {
		t.Fatalf("MaxBehind %d, want HistorySize's 20", cfg.MaxBehind)
	}
	given := Config{HistorySize: 7}
	if _, err := given.withDefaults(); err != nil || given.HistoryAge != 0 {
		t.Fatal("withDefaults changed its receiver")
	}
}

func TestTrimInterval(t *testing.T) {
	tests := []struct {
		age  time.Duration
		want time.Duration
	}{
		{time.Hour, time.Minute},
		{time.Minute, 30 * time.Second},
		{time.Second, time.Second},
		{-1, time.Minute},
	}
	for _, tt := range tests {
		if got := trimInterval(Config{HistoryAge: tt.age}); got != tt.want {
			t.Errorf("HistoryAge %v: got %v, want %v", tt.age, got, tt.want)
		}
	}
}

func TestBackendStartedTwice(t *testing.T) {
	m := newMemory(10, -1, time.Now)
	b, err := New(Config{Backend: m})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := New(Config{Backend: m}); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Fatalf("got %v, want an error", err)
	}
}
