package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// rssMB reads a process's resident set from /proc, in MiB.
func rssMB(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatalf("no VmRSS for %d", pid)
	return 0
}

// BenchmarkWebRSS measures the memory of a separate `userstream web` while
// a headless Chromium keeps its overview open (server-sent events) and goes
// through the message browser, the Users page and the DAG grid, for a
// minute, with `userstream dev` producing 1000 users a second beside it.
// It reports the web process's peak and final RSS, and dev's for scale.
//
//	go test -run '^$' -bench WebRSS -benchtime 1x ./cmd/userstream/
func BenchmarkWebRSS(b *testing.B) {
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		b.Skip("no Chromium on PATH (Debian package chromium)")
	}
	dir := b.TempDir()
	const password = "bench-admin-1"
	kafka, registry, metrics, devWeb, webAddr := freeAddr(b), freeAddr(b), freeAddr(b), freeAddr(b), freeAddr(b)
	dev := start(b, "dev", "dev", "--data-dir", dir, "--kafka-addr", kafka, "--registry-addr", registry,
		"--api-addr", freeAddr(b), "--metrics-addr", metrics, "--web-addr", devWeb, "--connect-addr", "", "--schedule", "@every 1s",
		"--users-per-run", "1000", "--admin-password", password, "--status-every", "10s")
	waitListening(b, dev, devWeb)
	web := start(b, "web", "web", "--addr", webAddr, "--brokers", kafka, "--schema-registry", "http://"+registry,
		"--sink", "sqlite:"+filepath.Join(dir, "users.db"), "--metadata", "sqlite:"+filepath.Join(dir, "meta.db"),
		"--stream-metrics", "http://"+metrics+"/metrics", "--admin-password", password)
	waitListening(b, web, webAddr)

	alloc, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU)...)
	defer cancel()
	ctx, cancelTab := chromedp.NewContext(alloc)
	defer cancelTab()
	if err := chromedp.Do(ctx); err != nil { // starts the browser, for as long as ctx lives
		b.Fatal(err)
	}
	base := "http://" + webAddr
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(tctx, steps...); err != nil {
			b.Fatalf("%s: %v", what, err)
		}
	}
	run("log in", chromedp.Navigate(base+"/login"),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`form.logout`)))

	var peak, last float64
	for b.Loop() {
		pages := []string{"/", "/topics/users_created/messages?limit=50", "/users", "/dags/user_automation", "/groups/userstream-stream"}
		end := time.Now().Add(time.Minute)
		for i := 0; time.Now().Before(end); i++ {
			p := pages[i%len(pages)]
			run("open "+p, chromedp.Navigate(base+p), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
			if p == "/" {
				time.Sleep(6 * time.Second) // paces the browse: a dwell of three server-sent snapshots
			}
			last = rssMB(b, web.Pid())
			peak = max(peak, last)
			time.Sleep(time.Second) // paces the browse: a page a second
		}
	}
	b.ReportMetric(peak, "web-peak-MiB")
	b.ReportMetric(last, "web-final-MiB")
	b.ReportMetric(rssMB(b, dev.Pid()), "dev-MiB")
}
