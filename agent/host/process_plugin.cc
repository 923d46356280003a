#include "host/process_plugin.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "ipc/protocol.h"
#include "metrics/metrics.h"
#include "util/log.h"

extern char** environ;

namespace bb {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kFirstBackoff{500};
constexpr std::chrono::milliseconds kMaxBackoff{30000};
constexpr std::chrono::milliseconds kCreateLimit{15000};
constexpr std::chrono::milliseconds kDestroyLimit{1000};
constexpr std::chrono::milliseconds kRouteLimit{10000};

std::string seconds(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

std::string describeWait(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = strsignal(sig);
    return "was killed by signal " + std::to_string(sig) + " (" + (name ? name : "?") + ")";
  }
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "ended";
}

double number(const std::string& s) {
  if (s == "nan") return std::nan("");
  return std::strtod(s.c_str(), nullptr);
}

void appendTo(void* ctx, const char* data, size_t len) {
  static_cast<std::string*>(ctx)->append(data, len);
}

}  // namespace

struct ProcessPlugin::Child {
  pid_t pid = -1;
  std::unique_ptr<ipc::Channel> channel;
  std::atomic<bool> dead{false};  // the channel closed: the process is gone or going
  bool buried = false;            // reaped and counted (guarded by ProcessPlugin::mutex_)
  int wait_status = 0;

  ~Child() {
    if (channel) channel->close();
    channel.reset();  // joins the reader thread
    if (pid > 0 && !buried) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  /// Waits for the process to end, killing it after `grace`. Returns its wait status.
  int reap(std::chrono::milliseconds grace) {
    const auto until = Clock::now() + grace;
    int status = 0;
    for (;;) {
      pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid || (r < 0 && errno != EINTR)) break;
      if (Clock::now() >= until) {
        ::kill(pid, SIGKILL);
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return status;
  }
};

ProcessPlugin::ProcessPlugin(Options options, bb_host* host, const bb_host_api* api)
    : options_(std::move(options)), host_(host), api_(api) {
  if (options_.metrics) options_.metrics->pluginProcessRestarts(options_.name, 0);
}

ProcessPlugin::~ProcessPlugin() {
  std::shared_ptr<Child> child;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    child = std::move(child_);
  }
  if (child && !child->dead) child->channel->call(ipc::kDestroy, {}, kDestroyLimit);
  if (child) {
    child->channel->join();
    if (!child->buried) child->reap(kDestroyLimit);
    child->buried = true;
  }
  std::unique_lock<std::mutex> lock(calls_mutex_);
  calls_cv_.wait(lock, [&] { return calls_running_ == 0; });
}

std::shared_ptr<ProcessPlugin::Child> ProcessPlugin::spawn() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::runtime_error(std::string("cannot make its channel: ") + std::strerror(errno));
  // dup2 onto itself would keep close-on-exec set: make sure the child's end is not fd 3.
  if (sv[1] == ipc::kRunnerFd) {
    int moved = ::fcntl(sv[1], F_DUPFD_CLOEXEC, ipc::kRunnerFd + 1);
    ::close(sv[1]);
    sv[1] = moved;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, sv[1], ipc::kRunnerFd);
  // Nothing else of the agent's (listening sockets, clients' connections) goes to the child.
  posix_spawn_file_actions_addclosefrom_np(&actions, ipc::kRunnerFd + 1);
  std::vector<char*> argv{const_cast<char*>(options_.runner.c_str()),
                          const_cast<char*>(options_.plugin_path.c_str()), nullptr};
  auto child = std::make_shared<Child>();
  int rc =
      posix_spawn(&child->pid, options_.runner.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(sv[1]);
  if (rc != 0) {
    ::close(sv[0]);
    child->pid = -1;
    throw std::runtime_error("cannot start " + options_.runner + ": " + std::strerror(rc) +
                             "; install bb-plugin-runner next to the agent or use isolation: "
                             "inprocess");
  }
  std::weak_ptr<Child> weak = child;
  child->channel = std::make_unique<ipc::Channel>(
      sv[0],
      [this, weak](ipc::Message m) {
        if (auto c = weak.lock()) onRequest(c, std::move(m));
      },
      [weak] {
        if (auto c = weak.lock()) c->dead = true;
      });
  child->channel->start();
  return child;
}

void ProcessPlugin::createIn(const std::shared_ptr<Child>& child) {
  auto reply =
      child->channel->call(ipc::kCreate, {options_json_, options_.state_dir}, kCreateLimit);
  if (!reply) {
    child->channel->join();
    int status = child->reap(std::chrono::milliseconds(500));
    child->buried = true;
    throw std::runtime_error("its process (pid " + std::to_string(child->pid) + ") " +
                             describeWait(status) + " before create() returned");
  }
  if (reply->integer(0, BB_ERR_INTERNAL) != BB_OK) {
    std::string why = reply->field(1);
    child->channel->join();
    child->reap(kDestroyLimit);
    child->buried = true;
    throw std::runtime_error(why.empty() ? "create failed" : why);
  }
}

void ProcessPlugin::create(const std::string& options_json) {
  options_json_ = options_json;
  std::shared_ptr<Child> child;
  try {
    child = spawn();
    createIn(child);
  } catch (const std::exception& e) {
    throw std::runtime_error("plugin '" + options_.name + "' (" + options_.plugin_path +
                             ", isolation: process) failed to start: " + e.what());
  }
  logInfo("plugin:" + options_.name,
          "runs in its own process (pid " + std::to_string(child->pid) + ")");
  std::lock_guard<std::mutex> lock(mutex_);
  child_ = std::move(child);
}

void ProcessPlugin::buried(const std::shared_ptr<Child>& child, const std::string& during) {
  // After join() no handler of this child runs any more: its reader never holds the last
  // reference to it (which would destroy the channel under its own thread).
  child->channel->join();
  int status = child->reap(std::chrono::milliseconds(2000));
  std::lock_guard<std::mutex> lock(mutex_);
  if (child->buried) return;
  child->buried = true;
  ++restarts_;
  ++deaths_in_row_;
  auto backoff = kFirstBackoff * (1 << std::min(deaths_in_row_ - 1, 10));
  if (backoff > kMaxBackoff) backoff = kMaxBackoff;
  next_start_ = Clock::now() + backoff;
  last_exit_ =
      "its process (pid " + std::to_string(child->pid) + ") " + describeWait(status) + during;
  if (options_.metrics) options_.metrics->pluginProcessRestarts(options_.name, 1);
  logWarn("plugin:" + options_.name, last_exit_ + "; starting a new one in " + seconds(backoff) +
                                         " (death " + std::to_string(deaths_in_row_) +
                                         " in a row)");
  if (child_ == child) child_.reset();
}

int ProcessPlugin::collect(std::string& error) {
  std::shared_ptr<Child> child;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    child = child_;
  }
  if (child && child->dead) {
    buried(child, " while idle");
    child.reset();
  }
  if (!child) {
    std::chrono::steady_clock::time_point next;
    std::string last;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      next = next_start_;
      last = last_exit_;
    }
    auto now = Clock::now();
    if (now < next) {
      error = last + "; a new one starts in " +
              seconds(std::chrono::duration_cast<std::chrono::milliseconds>(next - now));
      return BB_ERR_INTERNAL;
    }
    try {
      child = spawn();
      createIn(child);
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex_);
      ++deaths_in_row_;
      auto backoff = kFirstBackoff * (1 << std::min(deaths_in_row_ - 1, 10));
      if (backoff > kMaxBackoff) backoff = kMaxBackoff;
      next_start_ = Clock::now() + backoff;
      last_exit_ = std::string("a new process failed to start: ") + e.what();
      error = last_exit_ + "; retrying in " + seconds(backoff);
      return BB_ERR_INTERNAL;
    }
    logInfo("plugin:" + options_.name,
            "started a new process (pid " + std::to_string(child->pid) + ")");
    std::lock_guard<std::mutex> lock(mutex_);
    child_ = child;
  }
  auto reply = child->channel->call(ipc::kCollect, {}, options_.collect_limit);
  if (!reply) {
    std::string during = " during collect";
    if (!child->dead) {
      during = " (killed by the agent: collect still running after " +
               seconds(options_.collect_limit) + ")";
      ::kill(child->pid, SIGKILL);
    }
    buried(child, during);
    std::lock_guard<std::mutex> lock(mutex_);
    error =
        last_exit_ + "; a new one starts in " +
        seconds(std::chrono::duration_cast<std::chrono::milliseconds>(next_start_ - Clock::now()));
    return BB_ERR_INTERNAL;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    deaths_in_row_ = 0;  // it answers: the next death starts the backoff afresh
  }
  int status = static_cast<int>(reply->integer(0, BB_ERR_INTERNAL));
  if (status != BB_OK) error = reply->field(1);
  return status;
}

void ProcessPlugin::kill() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (child_ && child_->pid > 0 && !child_->buried) ::kill(child_->pid, SIGKILL);
}

ProcessPlugin::State ProcessPlugin::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  State s;
  if (child_ && !child_->dead) s.pid = child_->pid;
  s.restarts = restarts_;
  s.last_exit = last_exit_;
  return s;
}

int ProcessPlugin::routeTrampoline(void* ctx, const bb_request* req, bb_sink_fn sink,
                                   void* sink_ctx) {
  auto* self = static_cast<ProcessPlugin*>(ctx);
  std::shared_ptr<Child> child;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    child = self->child_;
  }
  auto refuse = [&](const std::string& why) {
    std::string body = ipc::routeErrorBody(
        "plugin_unavailable",
        "plugin '" + self->options_.name + "' runs in its own process, " + why + "; retry shortly");
    sink(sink_ctx, body.data(), body.size());
    return 503;
  };
  if (!child || child->dead) return refuse("which is restarting");
  std::vector<std::string> fields{req->path ? req->path : ""};
  for (size_t i = 0; i < req->query_count; ++i) {
    fields.emplace_back(req->query_keys[i] ? req->query_keys[i] : "");
    fields.emplace_back(req->query_values[i] ? req->query_values[i] : "");
  }
  auto reply = child->channel->call(ipc::kRoute, std::move(fields), kRouteLimit);
  if (!reply) return refuse("which did not answer");
  const std::string& body = reply->field(1);
  sink(sink_ctx, body.data(), body.size());
  return static_cast<int>(reply->integer(0, 500));
}

void ProcessPlugin::onRequest(const std::shared_ptr<Child>& child, ipc::Message m) {
  auto status = [](int s) { return std::to_string(s); };
  switch (m.kind) {
    case ipc::kLog:
      api_->log(host_, static_cast<int>(m.integer(0, BB_LOG_INFO)), m.field(1).c_str());
      child->channel->reply(m.id, {status(BB_OK)});
      return;
    case ipc::kPublish:
      child->channel->reply(
          m.id,
          {status(api_->publish(host_, m.field(0).c_str(), m.field(1).data(), m.field(1).size()))});
      return;
    case ipc::kPublishError:
      child->channel->reply(
          m.id, {status(api_->publish_error(host_, m.field(0).c_str(), m.field(1).c_str()))});
      return;
    case ipc::kFeature:
      child->channel->reply(m.id,
                            {status(api_->feature(host_, m.field(0).c_str(), number(m.field(1))))});
      return;
    case ipc::kServe:
      child->channel->reply(
          m.id, {status(api_->serve(host_, m.field(0).c_str(), &routeTrampoline, this))});
      return;
    case ipc::kMetric: {
      std::vector<const char*> names, values;
      for (size_t i = 6; i + 1 < m.fields.size(); i += 2) {
        names.push_back(m.fields[i].c_str());
        values.push_back(m.fields[i + 1].c_str());
      }
      bb_metric metric{sizeof(bb_metric),
                       m.field(0).c_str(),
                       m.field(1).c_str(),
                       static_cast<uint32_t>(m.integer(2, -1)),
                       static_cast<uint32_t>(m.integer(3, -1)),
                       names.data(),
                       values.data(),
                       names.size(),
                       number(m.field(4)),
                       static_cast<uint32_t>(m.integer(5, 0))};
      child->channel->reply(m.id, {status(api_->metric(host_, &metric))});
      return;
    }
    case ipc::kRpc:
    case ipc::kRpcMany: {
      // The node may take seconds: off the reader thread, which must keep reading replies.
      {
        std::lock_guard<std::mutex> lock(calls_mutex_);
        ++calls_running_;
      }
      std::thread([this, c = child, m = std::move(m)]() mutable {
        const size_t n = m.fields.size() / 2;
        std::vector<std::string> bodies(n);
        std::vector<bb_rpc_request> reqs(n);
        for (size_t i = 0; i < n; ++i)
          reqs[i] = bb_rpc_request{sizeof(bb_rpc_request),
                                   m.fields[2 * i].c_str(),
                                   m.fields[2 * i + 1].c_str(),
                                   &appendTo,
                                   &bodies[i],
                                   BB_ERR_INTERNAL};
        int overall = n ? api_->rpc_call_many(host_, reqs.data(), n) : BB_ERR_INVALID;
        std::vector<std::string> out{std::to_string(overall)};
        for (size_t i = 0; i < n; ++i) {
          out.push_back(std::to_string(reqs[i].status));
          out.push_back(std::move(bodies[i]));
        }
        c->channel->reply(m.id, std::move(out));
        c.reset();  // before the count drops: the destructor may run as soon as it does
        std::lock_guard<std::mutex> lock(calls_mutex_);
        --calls_running_;
        calls_cv_.notify_all();
      }).detach();
      return;
    }
    default:
      child->channel->reply(m.id, {status(BB_ERR_INVALID)});
  }
}

}  // namespace bb
