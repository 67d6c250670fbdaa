/* The benchmark's launcher (scripts/bench.sh compiles it, static if it can). Two modes:
 *
 *   bench-run one FD HOSTNS PLUGIN [ARG...]
 *       Forks and execs PLUGIN with the inherited environment and stdin, copies its stdout and
 *       stderr to the launcher's own, waits, and writes "<wall ns> <maxrss KiB> <wait status>\n"
 *       to FD.
 *
 *   bench-run many HOSTNS PLUGIN CONCURRENCY CONF OUTDIR JOBS
 *       Runs one PLUGIN invocation per line "CONTAINERID NETNS" of the file JOBS, at most
 *       CONCURRENCY at a time: CNI_CONTAINERID and CNI_NETNS come from the line, the rest of the
 *       environment is inherited, stdin is the file CONF, stdout and stderr are copied to
 *       OUTDIR/<i>.out and OUTDIR/<i>.err (i = 0-based line number). Prints "job <i> <wall ns>
 *       <maxrss KiB> <wait status>" per job (in completion order) and then "total <wall ns>":
 *       from the first fork to the last job's end.
 *
 * HOSTNS is a network namespace file (/run/netns/NAME) the launcher enters with setns() before
 * the clock starts, so the plugins run in it without `ip netns exec` being timed; "-" stays in
 * the current namespace. If setns fails nothing is run: a plugin must never run in the machine's
 * own namespace by accident.
 *
 * Wall time is CLOCK_MONOTONIC from fork until the child is reaped by wait4 *and* its stdout and
 * stderr, which are pipes the launcher drains, have reached end-of-file. That is when a runtime
 * has its answer: libcni's exec waits for both, so a plugin that left a descendant holding its
 * output open would be timed until that descendant let go. maxrss is wait4's
 * ru_maxrss: the largest peak RSS of the child *or any descendant it waited for* (the kernel
 * folds reaped children's maxrss into the parent's with max, not sum), so a Go plugin's exec'd
 * IPAM child is covered; two processes' RSS is never added up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int enter_netns(const char *path) {
    if (strcmp(path, "-") == 0) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "bench-run: open %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (setns(fd, CLONE_NEWNET) < 0) {
        fprintf(stderr, "bench-run: setns %s: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Reads what is in `from` and appends it to `to` (-1: discard). Returns 0 at end-of-file. */
static int relay(int from, int to) {
    char buf[65536];
    ssize_t r;
    do r = read(from, buf, sizeof buf);
    while (r < 0 && errno == EINTR);
    if (r <= 0) return 0;
    for (ssize_t off = 0; to >= 0 && off < r;) {
        ssize_t w = write(to, buf + off, r - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) break;
        off += w;
    }
    return 1;
}

static int one(int argc, char **argv) {
    if (argc < 5) return 125;
    int fd = atoi(argv[2]);
    if (enter_netns(argv[3]) < 0) return 124;
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) return 126;
    long long a = now_ns();
    pid_t pid = fork();
    if (pid < 0) return 126;
    if (pid == 0) {
        close(fd);
        if (dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0) _exit(127);
        execv(argv[4], argv + 4);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    struct pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int targets[2] = {1, 2}, open_fds = 2;
    while (open_fds > 0) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return 126;
        }
        for (int i = 0; i < 2; i++) {
            if (p[i].fd >= 0 && p[i].revents && !relay(p[i].fd, targets[i])) {
                close(p[i].fd);
                p[i].fd = -1;
                open_fds--;
            }
        }
    }
    struct rusage ru;
    int status;
    if (wait4(pid, &status, 0, &ru) < 0) return 126;
    long long b = now_ns();
    dprintf(fd, "%lld %ld %d\n", b - a, ru.ru_maxrss, status);
    return 0;
}

struct job {
    char *cid, *netns;
    pid_t pid;
    long long start;
    /* The output pipes' read ends, the files they are copied to, the child's pidfd; -1 once
     * closed. The job ends when all three pipes/pidfd are done. */
    int out, err, outfile, errfile, pidfd;
    long maxrss;
    int status;
};

static void redirect(int target, const char *path, int flags) {
    int fd = open(path, flags, 0644);
    if (fd < 0 || dup2(fd, target) < 0) _exit(127);
    close(fd);
}

static int open_output(const char *outdir, size_t i, const char *ext) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%zu.%s", outdir, i, ext);
    return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

static int start_job(struct job *j, size_t i, const char *plugin, const char *conf, const char *outdir) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) return -1;
    j->outfile = open_output(outdir, i, "out");
    j->errfile = open_output(outdir, i, "err");
    if (j->outfile < 0 || j->errfile < 0) return -1;
    j->start = now_ns();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        redirect(0, conf, O_RDONLY);
        if (dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0) _exit(127);
        if (setenv("CNI_CONTAINERID", j->cid, 1) < 0 || setenv("CNI_NETNS", j->netns, 1) < 0)
            _exit(127);
        execl(plugin, plugin, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    j->pid = pid;
    j->out = out[0];
    j->err = err[0];
    j->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    return j->pidfd < 0 ? -1 : 0;
}

static int many(int argc, char **argv) {
    if (argc != 8) return 125;
    const char *plugin = argv[3], *conf = argv[5], *outdir = argv[6];
    int conc = atoi(argv[4]);
    if (conc < 1) return 125;
    FILE *f = fopen(argv[7], "r");
    if (!f) {
        perror("bench-run: jobs file");
        return 125;
    }
    struct job *jobs = NULL;
    size_t n = 0, cap = 0;
    char cid[256], netns[4096];
    while (fscanf(f, "%255s %4095s", cid, netns) == 2) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            jobs = realloc(jobs, cap * sizeof *jobs);
            if (!jobs) return 126;
        }
        jobs[n].cid = strdup(cid);
        jobs[n].netns = strdup(netns);
        jobs[n].pid = 0;
        n++;
    }
    fclose(f);
    if (enter_netns(argv[2]) < 0) return 124;

    struct pollfd *pfd = calloc(3 * (size_t)conc, sizeof *pfd);
    size_t *owner = calloc(3 * (size_t)conc, sizeof *owner);
    if (!pfd || !owner) return 126;
    size_t next = 0, running = 0, failed = 0;
    long long t0 = now_ns(), last = t0;
    while (next < n || running > 0) {
        while (next < n && running < (size_t)conc) {
            if (start_job(&jobs[next], next, plugin, conf, outdir) < 0) {
                perror("bench-run: start job");
                return 126;
            }
            next++;
            running++;
        }
        size_t np = 0;
        for (size_t i = 0; i < next; i++) {
            struct job *j = &jobs[i];
            if (j->pid <= 0) continue;
            int fds[3] = {j->out, j->err, j->pidfd};
            for (int k = 0; k < 3; k++) {
                if (fds[k] < 0) continue;
                pfd[np] = (struct pollfd){fds[k], POLLIN, 0};
                owner[np++] = i;
            }
        }
        if (poll(pfd, np, -1) < 0) {
            if (errno == EINTR) continue;
            return 126;
        }
        for (size_t k = 0; k < np; k++) {
            if (!pfd[k].revents) continue;
            struct job *j = &jobs[owner[k]];
            if (pfd[k].fd == j->pidfd) {
                struct rusage ru;
                if (wait4(j->pid, &j->status, 0, &ru) < 0) return 126;
                j->maxrss = ru.ru_maxrss;
                close(j->pidfd);
                j->pidfd = -1;
            } else if (pfd[k].fd == j->out && !relay(j->out, j->outfile)) {
                close(j->out);
                j->out = -1;
            } else if (pfd[k].fd == j->err && !relay(j->err, j->errfile)) {
                close(j->err);
                j->err = -1;
            }
        }
        for (size_t i = 0; i < next; i++) {
            struct job *j = &jobs[i];
            if (j->pid <= 0 || j->out >= 0 || j->err >= 0 || j->pidfd >= 0) continue;
            long long end = now_ns();
            last = end;
            printf("job %zu %lld %ld %d\n", i, end - j->start, j->maxrss, j->status);
            close(j->outfile);
            close(j->errfile);
            j->pid = -1;
            running--;
            if (j->status != 0) failed++;
        }
    }
    printf("total %lld\n", last - t0);
    return failed ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "one") == 0) return one(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "many") == 0) return many(argc, argv);
    fprintf(stderr, "usage: bench-run one FD HOSTNS PLUGIN [ARG...]\n"
                    "       bench-run many HOSTNS PLUGIN CONCURRENCY CONF OUTDIR JOBS\n");
    return 125;
}
