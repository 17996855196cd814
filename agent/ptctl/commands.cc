// ptctl verbs: one small handler per API call, found through a table.
#include <chrono>
#include <functional>
#include <optional>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/ptctl/format.h"
#include "agent/ptctl/libvirt_domain.h"
#include "agent/ptctl/ptctl.h"
#include "google/protobuf/empty.pb.h"

namespace ptnetmap::ptctl {
namespace {

namespace pb = ::ptnetmap::v1;

// What a handler gets: its positional arguments, the verb's options and the
// way to talk to the agent and the user.
struct Invocation {
  const Command& command;
  std::vector<std::string> args;
  pb::Ptnetmap::StubInterface& stub;
  grpc::health::v1::Health::StubInterface& health;
  std::ostream& out;
  // Set by a handler that finds the command line unusable; no RPC is made.
  mutable std::optional<std::string> usage_error;
  // Set when the error came from libvirt, not from the agent.
  mutable bool libvirt_error = false;

  bool json() const { return command.global.output == "json"; }
  std::unique_ptr<grpc::ClientContext> Context() const {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(command.global.timeout_seconds));
    return context;
  }
  const std::vector<std::string>& Option(const std::string& name) const {
    static const std::vector<std::string> kNone;
    auto it = command.options.find(name);
    return it == command.options.end() ? kNone : it->second;
  }
};

using Handler = std::function<grpc::Status(const Invocation&)>;

struct Verb {
  std::string object;
  std::string action;
  size_t min_args;
  size_t max_args;
  std::set<std::string> options;
  Handler run;
};

// Prints `message` as JSON or through `table`.
template <typename Message, typename TableFn>
void Show(const Invocation& in, const Message& message, TableFn table) {
  if (in.json()) {
    PrintJson(message, in.out);
  } else {
    table();
  }
}

void Done(const Invocation& in, const google::protobuf::Message& empty, absl::string_view what) {
  if (in.json()) {
    PrintJson(empty, in.out);
  } else {
    in.out << what << "\n";
  }
}

// The value of numeric option `flag`, 0 if absent; sets a usage error if
// it is not a number.
uint64_t ParseNumber(const Invocation& in, const std::string& flag) {
  const std::vector<std::string>& values = in.Option(flag);
  uint64_t value = 0;
  if (!values.empty() && !absl::SimpleAtoi(values.back(), &value)) {
    in.usage_error = absl::StrCat("--", flag, " needs a number, not '", values.back(), "'");
  }
  return value;
}

grpc::Status VmAttach(const Invocation& in) {
  pb::CreateVmAttachmentRequest req;
  req.set_name(in.args[1]);
  const std::vector<std::string>& trust = in.Option("trust");
  if (trust.empty() || (trust.back() != "trusted" && trust.back() != "untrusted")) {
    in.usage_error = "vm attach needs --trust untrusted (private port on a switch) or "
                     "--trust trusted (pipe end shared with --peer VMs)";
    return grpc::Status::OK;
  }
  if (trust.back() == "trusted") {
    req.set_trust(pb::TRUST_POLICY_TRUSTED);
    req.set_pipe_name(in.args[0]);
  } else {
    req.set_trust(pb::TRUST_POLICY_UNTRUSTED);
    req.set_switch_name(in.args[0]);
  }
  for (const std::string& peer : in.Option("peer")) req.add_peers(peer);
  req.set_rings(static_cast<uint32_t>(ParseNumber(in, "rings")));
  req.set_region_bytes(ParseNumber(in, "region_bytes"));
  if (in.usage_error) return grpc::Status::OK;
  pb::VmAttachment resp;
  grpc::Status s = in.stub.CreateVmAttachment(in.Context().get(), req, &resp);
  if (s.ok()) Show(in, resp, [&] { PrintVmAttachmentDetail(resp, in.out); });
  return s;
}

// The libvirt domain, scope and URI of `domain attach|detach`.
DomainTarget Target(const Invocation& in) {
  DomainTarget target{.domain = in.args[0], .timeout_seconds = in.command.global.timeout_seconds};
  if (!in.Option("connect").empty()) target.uri = in.Option("connect").back();
  int scopes = 0;
  for (const auto& [flag, scope] : {std::pair{"live", DeviceScope::kLive},
                                    std::pair{"config", DeviceScope::kConfig},
                                    std::pair{"persistent", DeviceScope::kPersistent}}) {
    if (!in.Option(flag).empty()) {
      target.scope = scope;
      ++scopes;
    }
  }
  if (scopes > 1) in.usage_error = "choose one of --live, --config and --persistent";
  return target;
}

const char* ScopeText(DeviceScope scope) {
  switch (scope) {
    case DeviceScope::kLive: return " (running domain)";
    case DeviceScope::kConfig: return " (config)";
    case DeviceScope::kPersistent: return " (running domain and config)";
    case DeviceScope::kCurrent: break;
  }
  return "";
}

grpc::Status FromLibvirt(const Invocation& in, const absl::Status& s) {
  in.libvirt_error = true;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

// The agent gives the device XML; libvirt puts it on the domain.
grpc::Status DomainAttach(const Invocation& in) {
  const DomainTarget target = Target(in);
  if (in.usage_error) return grpc::Status::OK;
  pb::GetVmAttachmentRequest req;
  req.set_name(in.args[1]);
  pb::VmAttachment vm;
  grpc::Status s = in.stub.GetVmAttachment(in.Context().get(), req, &vm);
  if (!s.ok()) return s;
  if (absl::Status a = AttachShmem(target, vm.name(), vm.libvirt_xml()); !a.ok()) {
    return FromLibvirt(in, a);
  }
  Show(in, vm, [&] {
    in.out << "attached shmem device " << vm.name() << " to domain " << target.domain
           << ScopeText(target.scope) << "\n";
  });
  return grpc::Status::OK;
}

// Needs no agent: the device is found in the domain by its name.
grpc::Status DomainDetach(const Invocation& in) {
  const DomainTarget target = Target(in);
  if (in.usage_error) return grpc::Status::OK;
  if (absl::Status d = DetachShmem(target, in.args[1]); !d.ok()) return FromLibvirt(in, d);
  Done(in, google::protobuf::Empty(),
       absl::StrCat("detached shmem device ", in.args[1], " from domain ", target.domain,
                    ScopeText(target.scope)));
  return grpc::Status::OK;
}

grpc::Status Health(const Invocation& in) {
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status s = in.health.Check(in.Context().get(), req, &resp);
  if (!s.ok()) return s;
  if (resp.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "ptnetd is not serving");
  }
  Show(in, resp, [&] { in.out << "SERVING\n"; });
  return s;
}

const std::vector<Verb>& Verbs() {
  static const auto* verbs = new std::vector<Verb>{
      {"switch", "create", 1, 1, {}, [](const Invocation& in) {
         pb::CreateSwitchRequest req;
         req.set_name(in.args[0]);
         pb::Switch resp;
         grpc::Status s = in.stub.CreateSwitch(in.Context().get(), req, &resp);
         if (s.ok()) Show(in, resp, [&] { PrintSwitches({&resp}, in.out); });
         return s;
       }},
      {"switch", "delete", 1, 1, {}, [](const Invocation& in) {
         pb::DeleteSwitchRequest req;
         req.set_name(in.args[0]);
         pb::DeleteSwitchResponse resp;
         grpc::Status s = in.stub.DeleteSwitch(in.Context().get(), req, &resp);
         if (s.ok()) Done(in, resp, "deleted switch " + in.args[0]);
         return s;
       }},
      {"switch", "get", 1, 1, {}, [](const Invocation& in) {
         pb::GetSwitchRequest req;
         req.set_name(in.args[0]);
         pb::Switch resp;
         grpc::Status s = in.stub.GetSwitch(in.Context().get(), req, &resp);
         if (s.ok()) Show(in, resp, [&] { PrintSwitches({&resp}, in.out); });
         return s;
       }},
      {"switch", "list", 0, 0, {}, [](const Invocation& in) {
         pb::ListSwitchesResponse resp;
         grpc::Status s = in.stub.ListSwitches(in.Context().get(), {}, &resp);
         if (s.ok()) Show(in, resp, [&] { PrintSwitches(Pointers(resp.switches()), in.out); });
         return s;
       }},
      {"port", "create", 2, 2, {}, [](const Invocation& in) {
         pb::CreatePortRequest req;
         req.set_switch_name(in.args[0]);
         req.set_name(in.args[1]);
         pb::Port resp;
         grpc::Status s = in.stub.CreatePort(in.Context().get(), req, &resp);
         if (s.ok()) Show(in, resp, [&] { PrintPorts({&resp}, in.out); });
         return s;
       }},
      {"port", "delete", 2, 2, {}, [](const Invocation& in) {
         pb::DeletePortRequest req;
         req.set_switch_name(in.args[0]);
         req.set_name(in.args[1]);
         pb::DeletePortResponse resp;
         grpc::Status s = in.stub.DeletePort(in.Context().get(), req, &resp);
         if (s.ok()) Done(in, resp, "deleted port " + in.args[0] + ":" + in.args[1]);
         return s;
       }},
      {"port", "list", 0, 1, {}, [](const Invocation& in) {
         pb::ListPortsRequest req;
         if (!in.args.empty()) req.set_switch_name(in.args[0]);
         pb::ListPortsResponse resp;
         grpc::Status s = in.stub.ListPorts(in.Context().get(), req, &resp);
         if (s.ok()) Show(in, resp, [&] { PrintPorts(Pointers(resp.ports()), in.out); });
         return s;
       }},
      {"pipe", "create", 1, 1, {}, [](const Invocation& in) {
         pb::CreatePipeRequest req;
         req.set_name(in.args[0]);
         pb::Pipe resp;
         grpc::Status s = in.stub.CreatePipe(in.Context().get(), req, &resp);
         if (s.ok()) Show(in, resp, [&] { PrintPipes({&resp}, in.out); });
         return s;
       }},
      {"pipe", "delete", 1, 1, {}, [](const Invocation& in) {
         pb::DeletePipeRequest req;
         req.set_name(in.args[0]);
         pb::DeletePipeResponse resp;
         grpc::Status s = in.stub.DeletePipe(in.Context().get(), req, &resp);
         if (s.ok()) Done(in, resp, "deleted pipe " + in.args[0]);
         return s;
       }},
      {"pipe", "list", 0, 0, {}, [](const Invocation& in) {
         pb::ListPipesResponse resp;
         grpc::Status s = in.stub.ListPipes(in.Context().get(), {}, &resp);
         if (s.ok()) Show(in, resp, [&] { PrintPipes(Pointers(resp.pipes()), in.out); });
         return s;
       }},
      {"nic", "attach", 2, 2, {}, [](const Invocation& in) {
         pb::AttachNicRequest req;
         req.set_switch_name(in.args[0]);
         req.set_nic(in.args[1]);
         pb::NicAttachment resp;
         grpc::Status s = in.stub.AttachNic(in.Context().get(), req, &resp);
         if (s.ok()) Show(in, resp, [&] { PrintNics({&resp}, in.out); });
         return s;
       }},
      {"nic", "detach", 1, 1, {}, [](const Invocation& in) {
         pb::DetachNicRequest req;
         req.set_nic(in.args[0]);
         pb::DetachNicResponse resp;
         grpc::Status s = in.stub.DetachNic(in.Context().get(), req, &resp);
         if (s.ok()) Done(in, resp, "detached " + in.args[0]);
         return s;
       }},
      {"nic", "list", 0, 0, {}, [](const Invocation& in) {
         pb::ListNicAttachmentsResponse resp;
         grpc::Status s = in.stub.ListNicAttachments(in.Context().get(), {}, &resp);
         if (s.ok()) Show(in, resp, [&] { PrintNics(Pointers(resp.nics()), in.out); });
         return s;
       }},
      {"vm", "attach", 2, 2, {"trust", "peer", "rings", "region_bytes"}, VmAttach},
      {"vm", "detach", 1, 1, {}, [](const Invocation& in) {
         pb::DeleteVmAttachmentRequest req;
         req.set_name(in.args[0]);
         pb::DeleteVmAttachmentResponse resp;
         grpc::Status s = in.stub.DeleteVmAttachment(in.Context().get(), req, &resp);
         if (s.ok()) Done(in, resp, "deleted VM attachment " + in.args[0]);
         return s;
       }},
      {"vm", "get", 1, 1, {}, [](const Invocation& in) {
         pb::GetVmAttachmentRequest req;
         req.set_name(in.args[0]);
         pb::VmAttachment resp;
         grpc::Status s = in.stub.GetVmAttachment(in.Context().get(), req, &resp);
         if (s.ok()) Show(in, resp, [&] { PrintVmAttachmentDetail(resp, in.out); });
         return s;
       }},
      {"vm", "list", 0, 0, {}, [](const Invocation& in) {
         pb::ListVmAttachmentsResponse resp;
         grpc::Status s = in.stub.ListVmAttachments(in.Context().get(), {}, &resp);
         if (s.ok()) {
           Show(in, resp, [&] { PrintVmAttachments(Pointers(resp.vm_attachments()), in.out); });
         }
         return s;
       }},
      // The XML itself in both output modes: it is meant for virsh.
      {"vm", "xml", 1, 1, {}, [](const Invocation& in) {
         pb::GetVmAttachmentRequest req;
         req.set_name(in.args[0]);
         pb::VmAttachment resp;
         grpc::Status s = in.stub.GetVmAttachment(in.Context().get(), req, &resp);
         if (s.ok()) in.out << resp.libvirt_xml() << "\n";
         return s;
       }},
      {"domain", "attach", 2, 2, {"live", "config", "persistent", "connect"}, DomainAttach},
      {"domain", "detach", 2, 2, {"live", "config", "persistent", "connect"}, DomainDetach},
      {"stats", "", 0, 0, {}, [](const Invocation& in) {
         pb::GetStatsResponse resp;
         grpc::Status s = in.stub.GetStats(in.Context().get(), {}, &resp);
         if (s.ok()) Show(in, resp, [&] { PrintStats(resp, in.out); });
         return s;
       }},
      {"health", "", 0, 0, {}, Health},
  };
  return *verbs;
}

// "vm delete" reads as naturally as "vm detach"; accept both.
std::string CanonicalAction(const std::string& object, const std::string& action) {
  if (object == "vm" && action == "delete") return "detach";
  return action;
}

}  // namespace

int ExitCodeFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return kExitOk;
    case grpc::StatusCode::NOT_FOUND: return kExitNotFound;
    case grpc::StatusCode::ALREADY_EXISTS: return kExitAlreadyExists;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE: return kExitRejected;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED: return kExitUnavailable;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return kExitLimit;
    case grpc::StatusCode::UNIMPLEMENTED: return kExitUnimplemented;
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED: return kExitPermission;
    default: return kExitInternal;
  }
}

int RunCommand(const Command& command, pb::Ptnetmap::StubInterface& stub,
               grpc::health::v1::Health::StubInterface& health, std::ostream& out,
               std::ostream& err) {
  if (command.help || command.words.empty()) {
    (command.help ? out : err) << Usage();
    return command.help ? kExitOk : kExitUsage;
  }
  const std::string& object = command.words[0];
  const bool has_action = object != "stats" && object != "health";
  const std::string action =
      has_action && command.words.size() > 1 ? CanonicalAction(object, command.words[1]) : "";
  const size_t consumed = has_action ? 2 : 1;
  const Verb* verb = nullptr;
  for (const Verb& v : Verbs()) {
    if (v.object == object && v.action == action) verb = &v;
  }
  if (verb == nullptr || command.words.size() < consumed) {
    err << "ptctl: unknown command '" << absl::StrJoin(command.words, " ")
        << "'; run ptctl --help\n";
    return kExitUsage;
  }
  std::vector<std::string> args(command.words.begin() + consumed, command.words.end());
  if (args.size() < verb->min_args || args.size() > verb->max_args) {
    err << "ptctl: wrong number of arguments for '" << object << (action.empty() ? "" : " ")
        << action << "'; run ptctl --help\n";
    return kExitUsage;
  }
  for (const auto& [name, values] : command.options) {
    if (!verb->options.contains(name)) {
      err << "ptctl: --" << name << " does not apply to '" << object << " " << action << "'\n";
      return kExitUsage;
    }
  }

  Invocation invocation{command, std::move(args), stub, health, out, std::nullopt, false};
  const grpc::Status status = verb->run(invocation);
  if (invocation.usage_error) {
    err << "ptctl: " << *invocation.usage_error << "\n";
    return kExitUsage;
  }
  if (status.ok()) return kExitOk;
  err << "ptctl: " << status.error_message() << "\n";
  if (!invocation.libvirt_error && (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                                    status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)) {
    err << "ptctl: is ptnetd running and reachable at "
        << (command.global.address.empty() ? "unix:" + command.global.socket
                                           : command.global.address)
        << "? (systemctl status ptnetd; --socket/--address choose where to connect)\n";
  }
  return ExitCodeFor(status.error_code());
}

}  // namespace ptnetmap::ptctl
