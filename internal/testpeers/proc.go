package testpeers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process whose stdout and stderr go, line by line, to a
// log file and to a list that callers wait on.
type proc struct {
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	logPath string
	logFile *os.File

	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced whenever lines grows or the process exits

	exited  chan struct{} // closed once the process has exited and its output is read
	waitErr error
	stopped sync.Once
}

// startProc starts name with args in dir, environment env added to ours,
// its output logged to logPath.
func startProc(name, logPath, dir string, env []string, bin string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = ChildAttr()
	pr, pw, err := os.Pipe()
	if err != nil {
		f.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	stdin, err := cmd.StdinPipe()
	if err != nil {
		f.Close()
		pr.Close()
		pw.Close()
		return nil, err
	}
	fmt.Fprintf(f, "# %s %s\n", bin, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		f.Close()
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	pw.Close() // the child holds its own copy
	p := &proc{name: name, cmd: cmd, stdin: stdin, logPath: logPath, logFile: f,
		changed: make(chan struct{}), exited: make(chan struct{})}
	go p.read(pr)
	return p, nil
}

// read copies the output until the process closes it, then reaps it.
func (p *proc) read(r *os.File) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		fmt.Fprintf(p.logFile, "%s %s\n", time.Now().Format("15:04:05.000"), line)
		p.lines = append(p.lines, line)
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
	r.Close()
	err := p.cmd.Wait()
	p.mu.Lock()
	p.waitErr = err
	fmt.Fprintf(p.logFile, "%s # exited: %v\n", time.Now().Format("15:04:05.000"), exitString(err))
	p.logFile.Close()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	close(p.exited)
}

func exitString(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

// pid is the child's process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// mark is the number of lines read so far, to wait for lines after it.
func (p *proc) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// waitLine waits for a line at index from or later that contains substr
// and returns its index.
func (p *proc) waitLine(ctx context.Context, from int, substr string) (int, string, error) {
	for {
		p.mu.Lock()
		i, line, ok := p.find(from, substr)
		from = len(p.lines)
		ch := p.changed
		p.mu.Unlock()
		if ok {
			return i, line, nil
		}
		select {
		case <-ch:
		case <-p.exited:
			// Read what came last before giving up.
			p.mu.Lock()
			i, line, ok := p.find(from, substr)
			err := p.waitErr
			p.mu.Unlock()
			if ok {
				return i, line, nil
			}
			return 0, "", fmt.Errorf("%s exited (%s) before printing %q", p.name, exitString(err), substr)
		case <-ctx.Done():
			return 0, "", fmt.Errorf("%s did not print %q: %w", p.name, substr, context.Cause(ctx))
		}
	}
}

// find looks for substr in the lines from index from on; p.mu is held.
func (p *proc) find(from int, substr string) (int, string, bool) {
	for i := from; i < len(p.lines); i++ {
		if strings.Contains(p.lines[i], substr) {
			return i, p.lines[i], true
		}
	}
	return 0, "", false
}

// write sends s to the child's stdin.
func (p *proc) write(s string) error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s has exited", p.name)
	default:
	}
	_, err := io.WriteString(p.stdin, s)
	return err
}

// running reports whether the child has not exited yet.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop ends the child by its PID: first the given polite way (a command
// on stdin, SIGTERM), then SIGKILL after grace. It waits for the exit.
func (p *proc) stop(quit string, grace time.Duration) error {
	var err error
	p.stopped.Do(func() {
		if !p.running() {
			return
		}
		if quit != "" {
			_ = p.write(quit)
			select {
			case <-p.exited:
				return
			case <-time.After(grace):
			}
		}
		if serr := p.cmd.Process.Signal(syscall.SIGTERM); serr != nil && !errors.Is(serr, os.ErrProcessDone) {
			err = serr
		}
		select {
		case <-p.exited:
			return
		case <-time.After(grace):
		}
		if kerr := p.cmd.Process.Kill(); kerr != nil && !errors.Is(kerr, os.ErrProcessDone) {
			err = kerr
		}
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			err = fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.pid())
		}
	})
	p.stdin.Close()
	return err
}

// output returns everything the child printed so far.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}
