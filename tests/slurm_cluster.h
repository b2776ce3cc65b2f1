// A one-node Slurm cluster for the tests, started from nothing under a temporary directory and stopped
// when the object goes: a munge key and munged, a slurm.conf for this machine (proctrack/linuxproc,
// task/none: no cgroups needed), slurmctld and slurmd, all in the foreground as children of the test
// (each dies with the test process even when ctest kills it: PR_SET_PDEATHSIG). Ports are free ones
// the kernel hands out; every state, spool, log and socket file lives under the directory. SLURM_CONF
// points the test's own sbatch, squeue, scancel and scontrol (and the unipelt it starts) at it.
//
// Needs root (slurmd runs jobs as any user) and Debian's slurm-wlm and munge
// (scripts/install-deps.sh); skip_reason() says why when the cluster cannot be had.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "train/process.h"

namespace unipelt::testing {

class SlurmCluster {
 public:
  explicit SlurmCluster(const std::filesystem::path& dir) : dir_(dir) {
    if (const char* old = std::getenv("SLURM_CONF")) old_conf_ = old;
    reason_ = start_cluster();
    ready_ = reason_.empty();
  }

  ~SlurmCluster() {
    if (ready_) {  // cancel whatever is left, so that slurmd ends its job steps before it goes
      run_command({"scancel", "--full", "--me"}, 10);
      wait_for([] { return run_command({"squeue", "-h", "--me"}).output.empty(); }, 15);
    }
    for (auto it = pids_.rbegin(); it != pids_.rend(); ++it) ::kill(*it, SIGTERM);
    for (pid_t pid : pids_) {
      const bool gone = wait_for([pid] { return ::waitpid(pid, nullptr, WNOHANG) == pid; }, 10);
      if (!gone) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
    // The later tests of the process must not talk to a cluster that is gone.
    if (old_conf_) ::setenv("SLURM_CONF", old_conf_->c_str(), 1);
    else ::unsetenv("SLURM_CONF");
  }
  SlurmCluster(const SlurmCluster&) = delete;
  SlurmCluster& operator=(const SlurmCluster&) = delete;

  bool ready() const { return ready_; }
  const std::string& skip_reason() const { return reason_; }
  std::string conf() const { return (dir_ / "slurm.conf").string(); }

  // Polls `done` every 200 ms for at most `seconds`.
  template <class F>
  static bool wait_for(F done, double seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!done()) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return true;
  }

  // The daemons' logs, for a failure message.
  std::string logs() const {
    std::string out;
    for (const char* name : {"munge/munged.log", "slurmctld.log", "slurmd.log"}) {
      std::ifstream in(dir_ / name);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (text.size() > 1500) text = text.substr(text.size() - 1500);
      out += "\n--- " + std::string(name) + ":\n" + text;
    }
    return out;
  }

 private:
  // Everything up to an idle node; the reason when something could not be had ("" when it is up).
  std::string start_cluster() {
    if (::geteuid() != 0) return "needs root (slurmd must run jobs; CI and the dev machines run as root)";
    for (const char* tool : {"munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo"})
      if (find_tool(tool).empty())
        return std::string(tool) + " is not installed (scripts/install-deps.sh installs slurm-wlm and munge)";
    std::filesystem::create_directories(dir_ / "munge");
    std::filesystem::create_directories(dir_ / "state");
    std::filesystem::create_directories(dir_ / "spool");
    std::filesystem::permissions(dir_ / "munge", std::filesystem::perms::owner_all);
    write_munge_key();
    start({"munged", "-F", "--key-file=" + (dir_ / "munge/munge.key").string(), "--socket=" + socket(),
           "--pid-file=" + (dir_ / "munge/munged.pid").string(), "--log-file=" + (dir_ / "munge/munged.log").string(),
           "--seed-file=" + (dir_ / "munge/seed").string(), "--force"});
    if (!wait_for([&] { return std::filesystem::exists(socket()); }, 10)) return "munged did not start" + logs();
    write_config();
    ::setenv("SLURM_CONF", conf().c_str(), 1);
    start({"slurmctld", "-D", "-i", "-f", conf()});
    start({"slurmd", "-D", "-f", conf(), "-N", node_});
    if (!wait_for([&] { return run_command({"sinfo", "-h", "-N", "-o", "%t"}).output == "idle"; }, 30))
      return "the node did not become idle within 30 s" + logs();
    return "";
  }

  // The program's path (daemons live in sbin, which a test's PATH may lack); empty when absent.
  static std::string find_tool(const std::string& tool) {
    for (const char* dir : {"/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"})
      if (::access((std::string(dir) + "/" + tool).c_str(), X_OK) == 0) return std::string(dir) + "/" + tool;
    return "";
  }

  std::string socket() const { return (dir_ / "munge/munge.socket").string(); }

  void write_munge_key() {
    std::ifstream random("/dev/urandom", std::ios::binary);
    std::string key(1024, '\0');
    random.read(key.data(), static_cast<std::streamsize>(key.size()));
    const auto path = dir_ / "munge/munge.key";
    std::ofstream(path, std::ios::binary) << key;
    std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }

  // A port nobody listens on now: the kernel's pick for port 0.
  static int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    const int port = ntohs(a.sin_port);
    ::close(fd);
    return port;
  }

  void write_config() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    node_ = std::string(host).substr(0, std::string(host).find('.'));
    const std::string d = dir_.string();
    const int ctld_port = free_port();
    int slurmd_port = free_port();
    while (slurmd_port == ctld_port) slurmd_port = free_port();
    std::ofstream c(conf());
    c << "ClusterName=unipelt-test\nSlurmctldHost=" << node_ << "(127.0.0.1)\n"
      << "SlurmctldPort=" << ctld_port << "\nSlurmdPort=" << slurmd_port << "\n"
      << "SlurmUser=root\nSlurmdUser=root\nAuthType=auth/munge\nCredType=cred/munge\n"
      << "AuthInfo=socket=" << socket() << "\n"
      << "StateSaveLocation=" << d << "/state\nSlurmdSpoolDir=" << d << "/spool\n"
      << "SlurmctldPidFile=" << d << "/slurmctld.pid\nSlurmdPidFile=" << d << "/slurmd.pid\n"
      << "SlurmctldLogFile=" << d << "/slurmctld.log\nSlurmdLogFile=" << d << "/slurmd.log\n"
      << "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nMpiDefault=none\n"
      << "SchedulerType=sched/builtin\nSelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n"
      << "ReturnToService=2\nAccountingStorageType=accounting_storage/none\nJobCompType=jobcomp/none\n"
      << "JobAcctGatherType=jobacct_gather/none\nSlurmctldTimeout=30\nSlurmdTimeout=30\nInactiveLimit=0\n"
      << "MinJobAge=300\nKillWait=5\n"
      << "NodeName=" << node_ << " NodeAddr=127.0.0.1 CPUs=" << std::thread::hardware_concurrency()
      << " State=UNKNOWN\nPartitionName=test Nodes=" << node_ << " Default=YES MaxTime=INFINITE State=UP\n";
  }

  // fork + exec with PR_SET_PDEATHSIG: the daemon gets SIGTERM when the test process dies. Everything
  // the child needs is prepared before fork (no allocation between fork and exec).
  void start(const std::vector<std::string>& args) {
    const std::string program = find_tool(args[0]);
    const std::string log = (dir_ / (args[0] + ".out")).string();
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(1);
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, STDOUT_FILENO);
        ::dup2(fd, STDERR_FILENO);
      }
      ::execv(program.c_str(), argv.data());
      ::_exit(127);
    }
    if (pid > 0) pids_.push_back(pid);
  }

  std::filesystem::path dir_;
  std::string node_, reason_;
  std::vector<pid_t> pids_;
  std::optional<std::string> old_conf_;  // SLURM_CONF before the cluster set it
  bool ready_ = false;
};

}  // namespace unipelt::testing
