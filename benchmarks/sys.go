package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// raiseNoFile raises the soft limit on open files to the hard limit: 10,000
// connections need that many descriptors at each end. It returns the new
// soft limit.
func raiseNoFile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	return lim.Cur, nil
}

// procStats is what a server child reports about itself. Counters are
// cumulative; the driver takes differences between two snapshots.
type procStats struct {
	RSS           int64  `json:"rss"`            // VmRSS, bytes
	Goroutines    int    `json:"goroutines"`     // runtime.NumGoroutine
	HeapObjects   int64  `json:"heap_objects"`   // live and dead-but-unswept objects, bytes
	HeapCommitted int64  `json:"heap_committed"` // heap memory backed by the OS: objects + unused + free
	Stacks        int64  `json:"stacks"`         // goroutine stacks, bytes
	GoTotal       int64  `json:"go_total"`       // all memory mapped by the runtime less released
	Mallocs       uint64 `json:"mallocs"`        // runtime.MemStats.Mallocs
	CPUNanos      int64  `json:"cpu_ns"`         // user + system CPU time
	WriteCalls    int64  `json:"syscw"`          // write system calls (/proc/self/io)
	CtxSwitches   int64  `json:"ctx_switches"`   // voluntary and involuntary, all threads
	Threads       int64  `json:"threads"`
	NumGC         uint32 `json:"num_gc"`
	Produced      int64  `json:"produced"` // events /stream producers handed over
	// Counters are the server's own, if it keeps any (see counterer).
	Counters map[string]float64 `json:"counters,omitempty"`
}

var metricNames = []string{
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/stacks:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
}

// readProcStats takes a snapshot of this process.
func readProcStats() procStats {
	var s procStats
	s.Goroutines = runtime.NumGoroutine()

	samples := make([]metrics.Sample, len(metricNames))
	for i, n := range metricNames {
		samples[i].Name = n
	}
	metrics.Read(samples)
	v := func(i int) int64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(samples[i].Value.Uint64())
	}
	s.HeapObjects = v(0)
	s.HeapCommitted = v(0) + v(1) + v(2)
	s.Stacks = v(3)
	s.GoTotal = v(4) - v(5)

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.Mallocs = ms.Mallocs
	s.NumGC = ms.NumGC

	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.CPUNanos = ru.Utime.Nano() + ru.Stime.Nano()
		s.CtxSwitches = ru.Nvcsw + ru.Nivcsw
	}
	s.Threads = procField("/proc/self/status", "Threads:")
	s.RSS = procField("/proc/self/status", "VmRSS:") * 1024 // kB
	s.WriteCalls = procField("/proc/self/io", "syscw:")
	return s
}

// procField returns the first number after key in a /proc file, or -1.
func procField(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return -1
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// machineInfo describes where the figures were measured.
type machineInfo struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	MemTotal  string `json:"mem_total"`
	NoFile    uint64 `json:"nofile"`
	Pinned    string `json:"pinned"`
}

func readMachineInfo(pinned string, nofile uint64) machineInfo {
	m := machineInfo{
		CPUs:      runtime.NumCPU(),
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
		NoFile:    nofile,
		Pinned:    pinned,
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	// The logical CPUs the machine has, not only those this process may use.
	if n := procField("/proc/meminfo", "MemTotal:"); n > 0 {
		m.MemTotal = fmt.Sprintf("%.1f GiB", float64(n)/(1<<20))
	}
	if out, err := exec.Command("nproc", "--all").Output(); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil {
			m.CPUs = n
		}
	}
	return m
}

// cpuMeter measures how much CPU the rest of the machine used while a run
// was going on: all busy time (/proc/stat) less this process's and its
// waited-for children's (the server child is waited for within the run).
// Figures measured beside another busy process are not to be trusted.
type cpuMeter struct {
	start      time.Time
	busy, ours int64 // nanoseconds
}

func startCPUMeter() cpuMeter {
	return cpuMeter{start: time.Now(), busy: machineBusyNanos(), ours: ownCPUNanos()}
}

// foreign returns the other processes' CPU use during the run, in cores.
func (m cpuMeter) foreign() float64 {
	wall := time.Since(m.start)
	if wall <= 0 || m.busy < 0 {
		return 0
	}
	other := (machineBusyNanos() - m.busy) - (ownCPUNanos() - m.ours)
	return max(float64(other)/float64(wall), 0)
}

func ownCPUNanos() int64 {
	var n int64
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			n += ru.Utime.Nano() + ru.Stime.Nano()
		}
	}
	return n
}

// machineBusyNanos is the busy time of all CPUs from /proc/stat, or -1.
func machineBusyNanos() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return -1
	}
	var ticks int64
	// user nice system idle iowait irq softirq steal: user, nice, system
	// and steal. Interrupts are left out: most of it is the loopback
	// network of the run itself, which the kernel charges to no process.
	for _, i := range []int{1, 2, 3, 8} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return -1
		}
		ticks += n
	}
	return ticks * int64(time.Second) / clockTicks
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// waitQuiet waits until other processes keep fewer than limit cores busy
// over a 300 ms window, or until maxWait has passed; it returns the last
// figure measured.
func waitQuiet(limit float64, maxWait time.Duration) float64 {
	deadline := time.Now().Add(maxWait)
	for {
		m := startCPUMeter()
		time.Sleep(300 * time.Millisecond)
		f := m.foreign()
		if f < limit || time.Now().After(deadline) {
			return f
		}
	}
}
