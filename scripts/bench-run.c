/* The benchmark's launcher (scripts/bench.sh compiles it, static if it can). Two modes:
 *
 *   bench-run one FD HOSTNS PLUGIN [ARG...]
 *       Forks and execs PLUGIN with the inherited environment, stdin, stdout and stderr, waits,
 *       and writes "<wall ns> <maxrss KiB> <wait status>\n" to FD.
 *
 *   bench-run many HOSTNS PLUGIN CONCURRENCY CONF OUTDIR JOBS
 *       Runs one PLUGIN invocation per line "CONTAINERID NETNS" of the file JOBS, at most
 *       CONCURRENCY at a time: CNI_CONTAINERID and CNI_NETNS come from the line, the rest of the
 *       environment is inherited, stdin is the file CONF, stdout and stderr go to OUTDIR/<i>.out
 *       and OUTDIR/<i>.err (i = 0-based line number). Prints "job <i> <wall ns> <maxrss KiB>
 *       <wait status>" per job (in completion order) and then "total <wall ns>": from the first
 *       fork to the last wait4.
 *
 * HOSTNS is a network namespace file (/run/netns/NAME) the launcher enters with setns() before
 * the clock starts, so the plugins run in it without `ip netns exec` being timed; "-" stays in
 * the current namespace. If setns fails nothing is run: a plugin must never run in the machine's
 * own namespace by accident.
 *
 * Wall time is CLOCK_MONOTONIC from fork to the wait4 that reaps the child. maxrss is wait4's
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
#include <sys/resource.h>
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

static int one(int argc, char **argv) {
    if (argc < 5) return 125;
    int fd = atoi(argv[2]);
    if (enter_netns(argv[3]) < 0) return 124;
    long long a = now_ns();
    pid_t pid = fork();
    if (pid < 0) return 126;
    if (pid == 0) {
        close(fd);
        execv(argv[4], argv + 4);
        _exit(127);
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
};

static void redirect(int target, const char *path, int flags) {
    int fd = open(path, flags, 0644);
    if (fd < 0 || dup2(fd, target) < 0) _exit(127);
    close(fd);
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

    size_t next = 0, running = 0, failed = 0;
    char path[4096];
    long long t0 = now_ns(), last = t0;
    while (next < n || running > 0) {
        while (next < n && running < (size_t)conc) {
            struct job *j = &jobs[next];
            j->start = now_ns();
            pid_t pid = fork();
            if (pid < 0) return 126;
            if (pid == 0) {
                redirect(0, conf, O_RDONLY);
                snprintf(path, sizeof path, "%s/%zu.out", outdir, next);
                redirect(1, path, O_WRONLY | O_CREAT | O_TRUNC);
                snprintf(path, sizeof path, "%s/%zu.err", outdir, next);
                redirect(2, path, O_WRONLY | O_CREAT | O_TRUNC);
                if (setenv("CNI_CONTAINERID", j->cid, 1) < 0 || setenv("CNI_NETNS", j->netns, 1) < 0)
                    _exit(127);
                execl(plugin, plugin, (char *)NULL);
                _exit(127);
            }
            j->pid = pid;
            next++;
            running++;
        }
        struct rusage ru;
        int status;
        pid_t pid = wait4(-1, &status, 0, &ru);
        if (pid < 0) {
            if (errno == EINTR) continue;
            return 126;
        }
        long long end = now_ns();
        last = end;
        for (size_t i = 0; i < next; i++) {
            if (jobs[i].pid == pid) {
                printf("job %zu %lld %ld %d\n", i, end - jobs[i].start, ru.ru_maxrss, status);
                jobs[i].pid = -1;
                running--;
                if (status != 0) failed++;
                break;
            }
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
