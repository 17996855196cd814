// Command-line parsing of ptctl.
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/ptctl/ptctl.h"

namespace ptnetmap::ptctl {
namespace {

// Options that belong to verbs; each verb checks which ones it accepts.
const std::set<std::string>& VerbOptions() {
  static const auto* options =
      new std::set<std::string>{"trust", "peer", "rings", "region_bytes", "connect"};
  return *options;
}

// Verb options that take no value (libvirt's scope flags, as in virsh).
const std::set<std::string>& VerbSwitches() {
  static const auto* switches = new std::set<std::string>{"live", "config", "persistent"};
  return *switches;
}

}  // namespace

std::string Usage() {
  return R"(usage: ptctl [global flags] OBJECT ACTION [ARGS] [flags]

Objects and actions:
  switch create NAME            create a VALE switch (NAME: vale + [A-Za-z0-9_])
  switch delete NAME            delete an empty switch
  switch get NAME               show one switch and what is on it
  switch list                   list switches
  port create SWITCH NAME       create a persistent VALE port on SWITCH
  port delete SWITCH NAME       delete a persistent port
  port list [SWITCH]            list persistent ports
  pipe create NAME              create a netmap pipe (ends NAME{0 and NAME}0)
  pipe delete NAME              delete an unused pipe
  pipe list                     list pipes
  nic attach SWITCH NIC         attach a host interface to SWITCH
  nic detach NIC                detach an interface from its switch
  nic list                      list NIC attachments
  vm attach SWITCH NAME --trust untrusted [--rings N] [--region_bytes B]
                                give a VM a private port on SWITCH
  vm attach PIPE NAME --trust trusted [--peer VM]... [--rings N] [--region_bytes B]
                                give a VM an end of PIPE, sharing memory with peers
  vm detach NAME                delete a VM attachment
  vm get NAME                   show one VM attachment
  vm list                       list VM attachments
  vm xml NAME                   print the libvirt <shmem> device of a VM attachment
  domain attach DOMAIN NAME [--live|--config|--persistent] [--connect URI]
                                add VM attachment NAME's <shmem> device to a libvirt domain
  domain detach DOMAIN NAME [--live|--config|--persistent] [--connect URI]
                                remove it (a live unplug waits --timeout for the guest)
  stats                         traffic counters of every port and attachment
  health                        check that ptnetd is serving

Global flags:
  --socket PATH        UNIX socket of ptnetd (default /run/ptnetmap/ptnetd.sock)
  --address HOST:PORT  use TCP with mutual TLS instead (needs --tls_ca, --tls_cert, --tls_key)
  --output table|json  output format (default table)
  --timeout SECONDS    per-call deadline (default 10)

libvirt (domain attach/detach): --connect URI as virsh -c (default: libvirt's,
qemu:///system for root); scope as virsh: the running domain if it runs, else
its config (default), --live, --config, or --persistent (both).

Exit codes: 0 ok, 1 usage, 2 not found, 3 already exists, 4 invalid or
conflicting request, 5 agent or module unavailable, 6 limit reached,
7 not supported by the module, 8 permission denied, 10 internal error.
)";
}

absl::StatusOr<Command> ParseArgs(const std::vector<std::string>& args) {
  Command command;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help" || arg == "help") {
      command.help = true;
      continue;
    }
    if (!absl::StartsWith(arg, "--")) {
      command.words.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    if (VerbSwitches().contains(name)) {
      command.options[name].push_back("true");
      continue;
    }
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
    }
    GlobalOptions& g = command.global;
    if (name == "socket") g.socket = value;
    else if (name == "address") g.address = value;
    else if (name == "tls_ca") g.tls_ca = value;
    else if (name == "tls_cert") g.tls_cert = value;
    else if (name == "tls_key") g.tls_key = value;
    else if (name == "output") {
      if (value != "table" && value != "json") {
        return absl::InvalidArgumentError("--output must be 'table' or 'json'");
      }
      g.output = value;
    } else if (name == "timeout") {
      if (!absl::SimpleAtoi(value, &g.timeout_seconds) || g.timeout_seconds <= 0) {
        return absl::InvalidArgumentError("--timeout must be a positive number of seconds");
      }
    } else if (VerbOptions().contains(name)) {
      command.options[name].push_back(value);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
  }
  return command;
}

}  // namespace ptnetmap::ptctl
