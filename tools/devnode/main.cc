// bb-devnode: a simulated The Block node. See --help and tools/devnode/README.md.
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "options.h"
#include "server.h"

int main(int argc, char** argv) {
  bool help = false;
  std::string error;
  auto opts = devnode::parseOptions(argc, argv, &help, &error);
  if (help) {
    std::cout << devnode::helpText();
    return 0;
  }
  if (!opts) {
    std::fprintf(stderr, "bb-devnode: %s\n", error.c_str());
    return 2;
  }

  // Signals are taken synchronously by the main thread (sigtimedwait), so every other thread
  // must block them; a reset connection must not kill the process either.
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::fprintf(stderr, "bb-devnode: profile %s, seed %llu, generating %llu blocks\n",
               devnode::profileName(opts->profile), static_cast<unsigned long long>(opts->seed),
               static_cast<unsigned long long>(opts->start_height));
  devnode::Node node(*opts);
  try {
    node.start();
  } catch (const Poco::Exception& e) {
    std::fprintf(stderr, "bb-devnode: cannot listen on %s:%d: %s (choose another --listen)\n",
                 opts->host.c_str(), opts->port, e.displayText().c_str());
    return 1;
  }
  std::printf("bb-devnode ready rpc=%s:%d profile=%s\n", opts->host.c_str(), node.port(),
              devnode::profileName(opts->profile));
  std::fflush(stdout);

  bool stop = false;
  auto poll_signal = [&] {
    if (stop) return true;
    timespec zero{0, 0};
    if (sigtimedwait(&stop_signals, nullptr, &zero) > 0) stop = true;
    return stop;
  };
  while (!stop) {
    timespec tick{0, 100 * 1000 * 1000};
    int sig = sigtimedwait(&stop_signals, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      stop = true;
      break;
    }
    node.serviceDownRequests(poll_signal);
  }
  std::fprintf(stderr, "bb-devnode: stopping\n");
  node.stop();
  return 0;
}
