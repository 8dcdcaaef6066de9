package redisbroker

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

var (
	cpuTopics  = flag.Int("cpu.topics", 20000, "BenchmarkInstanceCPU: topics, one subscriber each, spread over the instances")
	cpuRate    = flag.Int("cpu.rate", 2000, "BenchmarkInstanceCPU: events published per second, over all topics")
	cpuSeconds = flag.Int("cpu.seconds", 10, "BenchmarkInstanceCPU: how long it publishes")
)

// cpuInstances is how many instance processes BenchmarkInstanceCPU runs.
const cpuInstances = 4

// cpuStreamTopics is how many topics each stream of BenchmarkInstanceCPU
// subscribes to: a stream per topic would measure connections, not events.
const cpuStreamTopics = 50

// cpuChildEnv, when set, makes the test binary an instance process of
// BenchmarkInstanceCPU (see TestMain) rather than run tests: its value is
// the Redis address, the key prefix and the Delivery, comma-separated.
const cpuChildEnv = "REDISBROKER_CPU_INSTANCE"

// BenchmarkInstanceCPU measures the CPU an instance process spends on the
// events its own subscribers need, with interest-based delivery and with
// the single log. Each instance is a process of its own (this test binary
// again, see cpuChild): a broker on the backend and an Echo server of SSE
// streams. The benchmark, a process apart, publishes and reads the
// streams, so that neither counts in an instance's CPU. Two groups of
// instances run at the same time, on two Prefixes, so that they share the
// machine alike:
//
//   - four instances in the mode measured, each with the streams of a
//     quarter of the topics (-cpu.topics, one subscriber each, 50 topics
//     to a stream; topic t on instance t%4), and every topic published
//     on (-cpu.rate events per second, round the topics in order);
//   - own: one instance in DeliverAll mode whose streams subscribe to the
//     topics of the first of the four, on a Prefix of its own, and every
//     event published on one of them is published on its own too, at the
//     same moment: it gets the same events as the first of the four, at
//     the same times, and every event it reads is one its subscribers
//     need. This is the CPU an instance's own subscribers' events need.
//
// cpu-x-own is the mean CPU of one of the four over that of own, over the
// -cpu.seconds it publishes; events-cpu-x-own the same less, on both
// sides, what the instance spends idle for as long (measured over 3 s
// before publishing): the CPU the events cost. The streams must receive
// every event of their topics, once. Run it with
//
//	go test -run '^$' -bench InstanceCPU -benchtime 1x ./broker/redisbroker
func BenchmarkInstanceCPU(b *testing.B) {
	for _, mode := range []Delivery{DeliverAll, DeliverInterest} {
		b.Run(mode.String(), func(b *testing.B) {
			figs := cpuRun(b, []cpuGroup{{mode: mode, n: cpuInstances}, {mode: DeliverAll, n: 1}})
			cpu, own := figs[0], figs[1]
			b.ReportMetric(own.total, "own-cpu-ms")
			b.ReportMetric(cpu.total, "cpu-ms/instance")
			b.ReportMetric(cpu.total/own.total, "cpu-x-own")
			b.ReportMetric((cpu.total-cpu.idle)/(own.total-own.idle), "events-cpu-x-own")
		})
	}
}

// A cpuGroup is n instance processes in mode, on a Prefix of their own,
// subscribed to n quarters of the topics, published on at n quarters of
// the rate.
type cpuGroup struct {
	mode Delivery
	n    int
}

// cpuFigures are an instance's CPU in milliseconds while events were
// published, and what it spent idle for as long.
type cpuFigures struct{ total, idle float64 }

// cpuChildProc is an instance process, and what its streams received.
type cpuChildProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
	url string

	mu   sync.Mutex
	got  map[string]int // event data -> times received
	recv int
}

// cpuRun runs the groups at once, and returns the mean CPU of an instance
// of each while it published for -cpu.seconds.
func cpuRun(b *testing.B, groups []cpuGroup) []cpuFigures {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	transport := &http.Transport{MaxIdleConnsPerHost: 1000}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	var readers sync.WaitGroup
	defer readers.Wait()
	defer cancel()

	ask := func(c *cpuChildProc, what string) int64 {
		fmt.Fprintln(c.in, what)
		if !c.out.Scan() {
			b.Fatal("an instance process ended")
		}
		n, err := strconv.ParseInt(strings.TrimPrefix(c.out.Text(), what+" "), 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	cpu := func(c *cpuChildProc) time.Duration { return time.Duration(ask(c, "cpu")) * time.Microsecond }

	type running struct {
		cpuGroup
		children []*cpuChildProc
		topics   []string
		br       *broker.Broker
		rate     int
	}
	var all []*cpuChildProc
	var opened atomic.Int64
	streams := 0
	pub := redis.NewClient(&redis.Options{Addr: shared.Addr, PoolSize: 32})
	defer pub.Close()
	runs := make([]*running, len(groups))
	for g, group := range groups {
		prefix := testPrefix(b)
		r := &running{cpuGroup: group, rate: *cpuRate * group.n / cpuInstances}
		runs[g] = r
		backend, err := New(pub, Config{Prefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		if r.br, err = broker.New(broker.Config{Backend: backend}); err != nil {
			b.Fatal(err)
		}
		defer r.br.Close()
		for i := range group.n {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), cpuChildEnv+"="+shared.Addr+","+prefix+","+strconv.Itoa(int(group.mode)))
			cmd.Stderr = os.Stderr
			in, err := cmd.StdinPipe()
			if err != nil {
				b.Fatal(err)
			}
			out, err := cmd.StdoutPipe()
			if err != nil {
				b.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			c := &cpuChildProc{cmd: cmd, in: in, out: bufio.NewScanner(out), got: make(map[string]int)}
			b.Cleanup(func() {
				c.in.Close() // it exits on EOF
				c.cmd.Wait()
			})
			if !c.out.Scan() {
				b.Fatalf("instance %d did not start", i)
			}
			c.url = strings.TrimPrefix(c.out.Text(), "url ")
			r.children = append(r.children, c)
			all = append(all, c)

			// Topic t's subscriber is on instance t % cpuInstances.
			var mine []string
			for t := i; t < *cpuTopics; t += cpuInstances {
				mine = append(mine, "user-"+strconv.Itoa(t))
			}
			for len(mine) > 0 {
				k := min(cpuStreamTopics, len(mine))
				q := url.Values{"topic": mine[:k]}
				mine = mine[k:]
				streams++
				readers.Go(func() {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/events?"+q.Encode(), nil)
					resp, err := client.Do(req)
					if err != nil {
						if ctx.Err() == nil {
							b.Error(err)
						}
						return
					}
					defer resp.Body.Close()
					opened.Add(1)
					dec := event.NewDecoder(resp.Body)
					for {
						ev, err := dec.Decode()
						if err != nil {
							return
						}
						data, _ := ev.Data.(string)
						c.mu.Lock()
						c.got[data]++
						c.recv++
						c.mu.Unlock()
					}
				})
			}
		}
	}

	// Publishing goes round the topics in order, each instance's in turn.
	for _, r := range runs {
		for t := range *cpuTopics {
			if t%cpuInstances < r.n {
				r.topics = append(r.topics, "user-"+strconv.Itoa(t))
			}
		}
	}

	// Every stream subscribed, its topics watched, before the first
	// publish (the response headers come before Subscribe).
	deadline := time.Now().Add(60 * time.Second)
	for {
		subscribed := int64(0)
		for _, c := range all {
			subscribed += ask(c, "subscribers")
		}
		if opened.Load() == int64(streams) && subscribed == int64(streams) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d streams of %d subscribed after 60 s", subscribed, streams)
		}
		time.Sleep(50 * time.Millisecond)
	}

	var published []string
	var pmu sync.Mutex
	var next atomic.Int64
	// publishAll publishes on the topics of the first group round them,
	// at its rate times speed, for d; and each event on a topic of its
	// first instance on the same topic of the second group too, at once,
	// so that the second group's instances get their events when the
	// first one's instance 0 does.
	publishAll := func(speed float64, d time.Duration) int {
		const workers = 16
		var sent atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		r := runs[0]
		rate := float64(r.rate) * speed
		total := int(rate * d.Seconds())
		publish := func(br *broker.Broker, topic string) bool {
			data := `{"status":"shipped","topic":"` + topic + `","n":` + strconv.FormatInt(next.Add(1), 10) + `}`
			if _, err := br.Publish(ctx, topic, event.Event{Data: data}); err != nil {
				b.Error(err)
				return false
			}
			pmu.Lock()
			published = append(published, data)
			pmu.Unlock()
			sent.Add(1)
			return true
		}
		for w := range workers {
			wg.Go(func() {
				for i := w; i < total; i += workers {
					if wait := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); wait > 0 {
						time.Sleep(wait)
					}
					t := i % len(r.topics)
					if !publish(r.br, r.topics[t]) {
						return
					}
					if t%cpuInstances == 0 {
						for _, other := range runs[1:] {
							if !publish(other.br, r.topics[t]) {
								return
							}
						}
					}
				}
			})
		}
		wg.Wait()
		return int(sent.Load())
	}
	// waitAll waits until the streams received want events, and checks
	// that each published was received once.
	waitAll := func(want int) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := 0
			for _, c := range all {
				c.mu.Lock()
				got += c.recv
				c.mu.Unlock()
			}
			if got >= want || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // for any received twice
		pmu.Lock()
		defer pmu.Unlock()
		missing, twice, total := 0, 0, 0
		for _, data := range published {
			n := 0
			for _, c := range all {
				c.mu.Lock()
				n += c.got[data]
				c.mu.Unlock()
			}
			switch {
			case n == 0:
				missing++
			case n > 1:
				twice++
			}
		}
		for _, c := range all {
			c.mu.Lock()
			total += c.recv
			c.mu.Unlock()
		}
		if missing > 0 || twice > 0 || total != len(published) {
			b.Fatalf("of %d events published, %d missing and %d received more than once (%d received)",
				len(published), missing, twice, total)
		}
	}
	// Warm-up: every topic once, which also proves every stream is
	// subscribed.
	warmFor := 500 * time.Millisecond
	warm := publishAll(float64(*cpuTopics)/float64(*cpuRate)/warmFor.Seconds(), warmFor)
	waitAll(warm)

	// Idle for a while first: what an instance spends with no event
	// (timers, XREAD timeouts, heartbeats) is measured apart.
	idleFor := 3 * time.Second
	before := make([]time.Duration, len(all))
	idle := make([]time.Duration, len(all))
	for i, c := range all {
		before[i] = cpu(c)
	}
	time.Sleep(idleFor)
	for i, c := range all {
		now := cpu(c)
		idle[i] = (now - before[i]) * time.Duration(*cpuSeconds) * time.Second / idleFor
		before[i] = now
	}
	sent := publishAll(1, time.Duration(*cpuSeconds)*time.Second)
	waitAll(warm + sent)
	figs := make([]cpuFigures, len(runs))
	i := 0
	for g, r := range runs {
		var total, still time.Duration
		for range r.children {
			total += cpu(all[i]) - before[i]
			still += idle[i]
			i++
		}
		n := time.Duration(r.n)
		b.Logf("%s, %d instances: %d events/s for %d s on %d topics: %v CPU per instance, %v of it what one idle for as long spends",
			r.mode, r.n, r.rate, *cpuSeconds, len(r.topics), total/n, still/n)
		figs[g] = cpuFigures{total: float64(total.Milliseconds()) / float64(r.n), idle: float64(still.Milliseconds()) / float64(r.n)}
	}
	return figs
}

// cpuChild is an instance process of BenchmarkInstanceCPU: a broker on the
// backend, configured by spec (see cpuChildEnv), and its streams served on
// a loopback port it prints ("url http://..."). It answers each line "cpu"
// on its standard input with the CPU it has used ("cpu" and microseconds),
// and exits when its input ends.
func cpuChild(spec string) int {
	parts := strings.Split(spec, ",")
	if len(parts) != 3 {
		fmt.Fprintln(os.Stderr, "bad", cpuChildEnv)
		return 2
	}
	mode, _ := strconv.Atoi(parts[2])
	client := redis.NewClient(&redis.Options{Addr: parts[0], PoolSize: 64})
	defer client.Close()
	backend, err := New(client, Config{Prefix: parts[1], Delivery: Delivery(mode)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	br, err := broker.New(broker.Config{Backend: backend})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer br.Close()
	e := echo.New()
	e.Use(echosse.Middleware(echosse.Config{}))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		return br.Subscribe(s, c.QueryParams()["topic"]...)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{Handler: e}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Println("url http://" + ln.Addr().String())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "subscribers":
			fmt.Println("subscribers", br.Stats().Subscribers)
		case "cpu":
			var ru syscall.Rusage
			if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			us := ru.Utime.Sec*1e6 + ru.Utime.Usec + ru.Stime.Sec*1e6 + ru.Stime.Usec
			fmt.Println("cpu", us)
		}
	}
	if err := in.Err(); err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
