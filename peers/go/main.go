// Command peers-go runs one workload of the gort peer comparison and prints
// "VALUE [note]" (or "n/a why"), as the Rust children do. The workloads mirror
// peers/src/child/*.rs: same names, same sizes, same shape.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	spawnN         = 100_000
	spawnBatch     = 1_000
	switchN        = 1_000_000
	pingpongN      = 200_000
	spscN          = 5_000_000
	streamN        = 1_000_000
	selectN        = 500_000
	selectDefaultN = 10_000_000
	select2N       = 1_000_000
	mpmcN          = 4_000_000
	mpmcCap        = 128
	afterN         = 100_000
	afterFireN     = 100_000
	afterD         = time.Millisecond
	mutexN         = 20_000_000
	mutex2N        = 2_000_000
	mutex100N      = 20_000
	wgN            = 20_000_000
	ctxN           = 1_000_000
	blockedN       = 1_000
	burstN         = 100_000
	parkedN        = 1_000_000
	tcpConns       = 100
	tcpMsg         = 64
	tcpTime        = 2 * time.Second
	window         = 200 * time.Millisecond
	hogTime        = 600 * time.Millisecond
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: peers-go WORKLOAD")
		os.Exit(2)
	}
	value, note := run(os.Args[1])
	fmt.Println(strings.TrimSpace(value + " " + note))
	os.Exit(0)
}

func ns(t time.Time, ops int) string {
	return strconv.FormatFloat(float64(time.Since(t).Nanoseconds())/float64(ops), 'f', 3, 64)
}

func rate(t time.Time, ops int) string {
	return strconv.FormatFloat(float64(ops)/time.Since(t).Seconds(), 'f', 1, 64)
}

func run(w string) (string, string) {
	switch w {
	case "spawn":
		return spawn(), ""
	case "switch":
		return switchWL(), ""
	case "park_pingpong":
		return "n/a", "Go has no park/unpark"
	case "rss_parked":
		return rssParked()
	case "chan_pingpong":
		t := time.Now()
		pingpong(pingpongN, time.Time{})
		return ns(t, pingpongN), ""
	case "chan_spsc_128":
		return stream(128, spscN), ""
	case "chan_stream_0":
		return stream(0, streamN), ""
	case "select_blocking":
		return selectBlocking(), ""
	case "select_default":
		return selectDefault(), ""
	case "select_2prod":
		return select2Prod(), ""
	case "mpmc_4x4":
		return mpmc(4, 4), ""
	case "mpmc_1x4":
		return mpmc(1, 4), ""
	case "mpmc_4x1":
		return mpmc(4, 1), ""
	case "after_fire":
		t := time.Now()
		for i := 0; i < afterFireN; i++ {
			<-time.After(time.Nanosecond)
		}
		return ns(t, afterFireN), ""
	case "after":
		t := time.Now()
		cs := make([]<-chan time.Time, afterN)
		for i := range cs {
			cs[i] = time.After(afterD)
		}
		for _, c := range cs {
			<-c
		}
		return ns(t, afterN), ""
	case "mutex_uncontended":
		var m sync.Mutex
		x := 0
		t := time.Now()
		for i := 0; i < mutexN; i++ {
			m.Lock()
			x++
			m.Unlock()
		}
		return ns(t, mutexN), ""
	case "mutex_2":
		return contended(2, mutex2N), ""
	case "mutex_100":
		return contended(100, mutex100N), ""
	case "waitgroup":
		var wg sync.WaitGroup
		t := time.Now()
		for i := 0; i < wgN; i++ {
			wg.Add(1)
			wg.Done()
		}
		return ns(t, wgN), ""
	case "context_cancel":
		bg := context.Background()
		t := time.Now()
		for i := 0; i < ctxN; i++ {
			ctx, cancel := context.WithCancel(bg)
			cancel()
			_ = ctx
		}
		return ns(t, ctxN), ""
	case "syscall_ratio", "blocking_ratio":
		v, n := ratio(false)
		if w == "blocking_ratio" {
			n = "plain syscall (Go has no blocking()); " + n
		}
		return v, n
	case "spinner_ratio":
		return ratio(true)
	case "tcp_echo":
		return tcpEcho(), ""
	case "syscall_threads":
		return syscallThreads()
	case "spawn_burst":
		return spawnBurst(), "WaitGroup"
	case "daisy_10k", "daisy_30k", "daisy_100k", "daisy_10k_rss", "daisy_30k_rss", "daisy_100k_rss":
		return daisy(w)
	case "parked_1m", "parked_1m_pte":
		return parked1m(strings.HasSuffix(w, "_pte"))
	}
	return "n/a", "unknown workload"
}

// spawnBurst: from cold, spawn burstN goroutines from one goroutine, then wait for all.
func spawnBurst() string {
	res := make(chan string)
	go func() {
		t := time.Now()
		var wg sync.WaitGroup
		wg.Add(burstN)
		for i := 0; i < burstN; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
		res <- ns(t, burstN)
	}()
	return <-res
}

func daisyLink(left, right chan int) {
	left <- 1 + <-right
}

// daisy: Pike's daisy chain of N goroutines; build + run time in ms, or (_rss) peak RSS in MiB.
func daisy(w string) (string, string) {
	k, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(w, "daisy_"), "_rss"), "k"))
	n := k * 1000
	t := time.Now()
	leftmost := make(chan int)
	right := leftmost
	left := leftmost
	for i := 0; i < n; i++ {
		right = make(chan int)
		go daisyLink(left, right)
		left = right
	}
	go func(c chan int) { c <- 1 }(right)
	got := <-leftmost
	took := time.Since(t)
	if got != n+1 {
		return "NaN", fmt.Sprintf("wrong result %d", got)
	}
	if strings.HasSuffix(w, "_rss") {
		return strconv.FormatFloat(float64(statusKiB("VmHWM"))/1024, 'f', 1, 64), ""
	}
	return strconv.FormatFloat(float64(took.Nanoseconds())/1e6, 'f', 3, 64), ""
}

// statusKiB: a field of /proc/self/status in KiB.
func statusKiB(field string) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(strings.TrimPrefix(l, field+":"))
			if len(f) > 0 {
				v, _ := strconv.Atoi(f[0])
				return v
			}
		}
	}
	return 0
}

// parked1m: a million goroutines blocked receiving from one channel; RSS (or VmPTE) per goroutine.
func parked1m(pte bool) (string, string) {
	n := parkedN
	if v, err := strconv.Atoi(os.Getenv("PEERS_PARKED_N")); err == nil && v > 0 {
		n = v
	}
	time.Sleep(50 * time.Millisecond)
	rss0, pte0 := rssBytes(), statusKiB("VmPTE")
	var parked int64
	stop := make(chan struct{})
	t := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&parked, 1)
			<-stop
		}()
	}
	got := waitCount(&parked, n)
	took := time.Since(t)
	rss := float64(rssBytes()-rss0) / 1024 / float64(got)
	ptes := float64(statusKiB("VmPTE")-pte0) / float64(got)
	note := fmt.Sprintf("N = %d in %.1f s; RSS %.2f KiB + VmPTE %.2f KiB each", n, took.Seconds(), rss, ptes)
	if pte {
		return strconv.FormatFloat(ptes, 'f', 3, 64), note
	}
	return strconv.FormatFloat(rss, 'f', 3, 64), note
}

func spawn() string {
	batch := func() {
		var wg sync.WaitGroup
		wg.Add(spawnBatch)
		for i := 0; i < spawnBatch; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
	}
	batch()
	t := time.Now()
	for i := 0; i < spawnN/spawnBatch; i++ {
		batch()
	}
	return ns(t, spawnN)
}

func switchWL() string {
	var wg sync.WaitGroup
	wg.Add(2)
	t := time.Now()
	for k := 0; k < 2; k++ {
		go func() {
			for i := 0; i < switchN; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return ns(t, 2*switchN)
}

// pingpong runs n round trips (or until `until` when it is not zero) over two
// unbuffered channels between this goroutine and a new one.
func pingpong(n int, until time.Time) int {
	c1, c2 := make(chan int), make(chan int)
	done := make(chan struct{})
	go func() {
		for v := range c1 {
			c2 <- v
		}
		close(done)
	}()
	i := 0
	for {
		if until.IsZero() {
			if i >= n {
				break
			}
		} else if !time.Now().Before(until) {
			break
		}
		c1 <- i
		<-c2
		i++
	}
	close(c1)
	<-done
	return i
}

func stream(capacity, n int) string {
	c := make(chan int, capacity)
	t := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			c <- i
		}
		close(c)
	}()
	sum := 0
	for v := range c {
		sum += v
	}
	_ = sum
	return rate(t, n)
}

func selectBlocking() string {
	c1, c2 := make(chan int), make(chan int)
	t := time.Now()
	go func() {
		for i := 0; i < selectN; i++ {
			if i%2 == 0 {
				c1 <- i
			} else {
				c2 <- i
			}
		}
	}()
	sum := 0
	for i := 0; i < selectN; i++ {
		select {
		case v := <-c1:
			sum += v
		case v := <-c2:
			sum += v
		}
	}
	_ = sum
	return ns(t, selectN)
}

// select2Prod: a 2-case select in a loop, each unbuffered channel fed by its own
// producer goroutine.
func select2Prod() string {
	c1, c2 := make(chan int), make(chan int)
	t := time.Now()
	for _, c := range []chan int{c1, c2} {
		go func(c chan int) {
			for i := 0; i < select2N/2; i++ {
				c <- i
			}
		}(c)
	}
	sum := 0
	for i := 0; i < select2N; i++ {
		select {
		case v := <-c1:
			sum += v
		case v := <-c2:
			sum += v
		}
	}
	_ = sum
	return ns(t, select2N)
}

// mpmc: p producers and c consumers on one channel of capacity mpmcCap, mpmcN messages.
func mpmc(p, c int) string {
	ch := make(chan int, mpmcCap)
	var wg sync.WaitGroup
	t := time.Now()
	wg.Add(p)
	for k := 0; k < p; k++ {
		go func() {
			for i := 0; i < mpmcN/p; i++ {
				ch <- i
			}
			wg.Done()
		}()
	}
	done := make(chan int)
	for k := 0; k < c; k++ {
		go func() {
			n := 0
			for range ch {
				n++
			}
			done <- n
		}()
	}
	wg.Wait()
	close(ch)
	total := 0
	for k := 0; k < c; k++ {
		total += <-done
	}
	if total != mpmcN {
		panic("mpmc: lost messages")
	}
	return rate(t, mpmcN)
}

func selectDefault() string {
	c1, c2 := make(chan int), make(chan int)
	hits := 0
	t := time.Now()
	for i := 0; i < selectDefaultN; i++ {
		select {
		case <-c1:
			hits++
		case <-c2:
			hits++
		default:
		}
	}
	r := ns(t, selectDefaultN)
	if hits != 0 {
		panic("select_default: a case was ready")
	}
	return r
}

func contended(g, n int) string {
	var m sync.Mutex
	x := 0
	var wg sync.WaitGroup
	wg.Add(g)
	t := time.Now()
	for k := 0; k < g; k++ {
		go func() {
			for i := 0; i < n; i++ {
				m.Lock()
				x++
				m.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	r := ns(t, g*n)
	if x != g*n {
		panic("contended: lost updates")
	}
	return r
}

func procStatus(key string) int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.HasPrefix(s.Text(), key) {
			v, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(s.Text(), key)))
			return v
		}
	}
	return 0
}

func rssBytes() int {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.Atoi(f[1])
	return pages * os.Getpagesize()
}

// rssN mirrors the Rust side: 100,000, or 30,000 under the default vm.max_map_count.
func rssN() int {
	if v, err := strconv.Atoi(os.Getenv("PEERS_RSS_N")); err == nil && v > 0 {
		return v
	}
	b, err := os.ReadFile("/proc/sys/vm/max_map_count")
	if err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && v >= 250_000 {
			return 100_000
		}
	}
	return 30_000
}

func waitCount(c *int64, n int) int {
	t := time.Now()
	for atomic.LoadInt64(c) < int64(n) && time.Since(t) < 10*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	return int(atomic.LoadInt64(c))
}

func rssParked() (string, string) {
	n := rssN()
	time.Sleep(50 * time.Millisecond)
	before := rssBytes()
	var parked int64
	stop := make(chan struct{})
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&parked, 1)
			<-stop
		}()
	}
	got := waitCount(&parked, n)
	after := rssBytes()
	kib := float64(after-before) / 1024 / float64(got)
	return strconv.FormatFloat(kib, 'f', 3, 64), fmt.Sprintf("N = %d", n)
}

func pipe() (int, int) {
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		panic(err)
	}
	return fds[0], fds[1]
}

// ratio: ping-pong rate while a third goroutine blocks in a raw read(2) (or
// spins) / the unhindered rate; see util::ratio on the Rust side.
func ratio(spin bool) (string, string) {
	pp := func(d time.Duration) int {
		until := time.Now().Add(d)
		res := make(chan int)
		go func() { res <- pingpong(0, until) }()
		return <-res
	}
	pp(30 * time.Millisecond)
	free := pp(window)
	if free < 1 {
		free = 1
	}
	r, wfd := pipe()
	var entered int32
	go func() {
		atomic.StoreInt32(&entered, 1)
		if spin {
			end := time.Now().Add(hogTime)
			x := uint64(0)
			for time.Now().Before(end) {
				for i := 0; i < 100; i++ {
					x = x*31 + 7
				}
			}
			_ = x
		} else {
			b := make([]byte, 1)
			syscall.Read(r, b)
		}
	}()
	released := make(chan struct{})
	go func() {
		time.Sleep(hogTime)
		syscall.Write(wfd, []byte{1})
		close(released)
	}()
	t := time.Now()
	for atomic.LoadInt32(&entered) == 0 && time.Since(t) < time.Second {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(5 * time.Millisecond)
	hindered := pp(window)
	<-released
	time.Sleep(20 * time.Millisecond)
	free2 := pp(window)
	if free2 < 1 {
		free2 = 1
	}
	v := float64(hindered) / (float64(free+free2) / 2)
	return strconv.FormatFloat(v, 'f', 4, 64),
		fmt.Sprintf("%d and %d free vs %d hindered round trips in %d ms", free, free2, hindered, window.Milliseconds())
}

func syscallThreads() (string, string) {
	base := procStatus("Threads:")
	r, _ := pipe()
	var entered int64
	for i := 0; i < blockedN; i++ {
		go func() {
			atomic.AddInt64(&entered, 1)
			b := make([]byte, 1)
			syscall.Read(r, b)
		}()
	}
	// Until all are in, or no progress for 1 s, or 10 s (as the Rust side).
	t := time.Now()
	last, lastChange := int64(0), time.Now()
	for {
		e := atomic.LoadInt64(&entered)
		if e != last {
			last, lastChange = e, time.Now()
		}
		if e >= blockedN || time.Since(lastChange) > time.Second || time.Since(t) > 10*time.Second {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	took := lastChange.Sub(t)
	time.Sleep(100 * time.Millisecond)
	n := procStatus("Threads:")
	return strconv.Itoa(n), fmt.Sprintf("%d/%d in read(2) after %d ms, %d threads before", atomic.LoadInt64(&entered), blockedN, took.Milliseconds(), base)
}

func tcpEcho() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	addr := l.Addr().String()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				buf := make([]byte, tcpMsg)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}(c)
		}
	}()
	var total int64
	var wg sync.WaitGroup
	t := time.Now()
	until := t.Add(tcpTime)
	wg.Add(tcpConns)
	for k := 0; k < tcpConns; k++ {
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				panic(err)
			}
			buf := make([]byte, tcpMsg)
			n := int64(0)
			for time.Now().Before(until) {
				if _, err := c.Write(buf); err != nil {
					panic(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					panic(err)
				}
				n++
			}
			atomic.AddInt64(&total, n)
		}()
	}
	wg.Wait()
	return rate(t, int(total))
}
