"""What the engine and the kernel say about memory, CPU and disk."""

import threading
import time
from pathlib import Path

MIB = 2**20


def working_set(memory_stats):
    """Memory a container really holds: usage less the page cache it could drop (as `docker stats` shows it)."""
    stats = memory_stats.get("stats", {})
    cache = stats.get("total_inactive_file", stats.get("inactive_file", stats.get("cache", 0)))
    return (memory_stats.get("usage", 0) - cache) / MIB


def container_mib(client, name):
    """One reading of a container's memory (MiB); None when it is gone."""
    try:
        stats = client.api.stats(name, stream=False, one_shot=True)
    except Exception:  # noqa: BLE001 - gone between listing and reading
        return None
    return working_set(stats.get("memory_stats", {})) if stats.get("memory_stats") else None


def host_available_mib():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return None


def processes_mib(client, name):
    """Resident memory of each process in a container: {command: MiB}, from /proc inside it."""
    script = (
        "for p in /proc/[0-9]*; do n=$(tr '\\0' ' ' < $p/cmdline 2>/dev/null | cut -c1-60); "
        'r=$(awk \'/^VmRSS/ {print $2}\' $p/status 2>/dev/null); [ -n "$r" ] && echo "$r $n"; done'
    )
    result = client.containers.get(name).exec_run(["sh", "-c", script])
    found = {}
    for line in result.output.decode(errors="replace").splitlines():
        kib, _, command = line.partition(" ")
        if kib.isdigit() and command.strip() and not command.startswith(("sh -c for p", "tr ", "cut ", "awk ")):
            found[command.strip()] = found.get(command.strip(), 0) + int(kib) / 1024
    return found


def volume_mib(client, image, volume):
    """Disk used by a named volume, measured by `du` in a throwaway container of one of our images."""
    output = client.containers.run(
        image, ["du", "-sk", "/v"], remove=True, user="0", volumes={volume: {"bind": "/v", "mode": "ro"}}, entrypoint=[]
    )
    return int(output.split()[0]) / 1024


class Sampler:
    """CPU (% of one core) and memory (MiB) of containers, and the host's available memory, every second.

    Reads the engine's stats stream (one connection per container), so it adds
    no `docker stats` processes of its own to what it measures.
    """

    def __init__(self, client, names):
        self.client, self.names = client, list(names)
        self.samples = {name: [] for name in self.names}  # (t, cpu %, MiB)
        self.host = []  # (t, available MiB)
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self.follow, args=(n,), daemon=True) for n in self.names]
        self.threads.append(threading.Thread(target=self.follow_host, daemon=True))

    def follow(self, name):
        try:
            for stats in self.client.api.stats(name, stream=True, decode=True):
                if self.stopped.is_set():
                    return
                cpu, pre = stats.get("cpu_stats", {}), stats.get("precpu_stats", {})
                used = cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get("total_usage", 0)
                elapsed = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
                cores = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or [1])
                percent = 100.0 * used / elapsed * cores if elapsed > 0 and pre.get("system_cpu_usage") else None
                self.samples[name].append((time.monotonic(), percent, working_set(stats.get("memory_stats", {}))))
        except Exception:  # noqa: BLE001 - the container went away: its samples so far stand
            return

    def follow_host(self):
        while not self.stopped.wait(1.0):
            self.host.append((time.monotonic(), host_available_mib()))

    def __enter__(self):
        self.host.append((time.monotonic(), host_available_mib()))
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()

    def cpu(self, name):
        return [p for _, p, _ in self.samples[name] if p is not None]

    def memory(self, name):
        return [m for _, _, m in self.samples[name]]

    def host_min_available(self):
        values = [m for _, m in self.host if m is not None]
        return min(values) if values else None
