#include "agent/service.h"

#include "absl/time/clock.h"

namespace ptnetmap::agent {
namespace {

namespace pb = ::ptnetmap::v1;

void Fill(const SwitchView& view, pb::Switch* out) {
  out->set_name(view.name);
  for (const std::string& p : view.ports) out->add_ports(p);
  for (const std::string& n : view.nics) out->add_nics(n);
  for (const std::string& v : view.vm_attachments) out->add_vm_attachments(v);
}

void Fill(const PortRecord& port, pb::Port* out) {
  out->set_switch_name(port.switch_name);
  out->set_name(port.name);
  out->set_netmap_name(SwitchPortNetmapName(port.switch_name, port.name));
}

void Fill(const PipeView& pipe, pb::Pipe* out) {
  out->set_name(pipe.name);
  for (const std::string& v : pipe.vm_attachments) out->add_vm_attachments(v);
}

void Fill(const NicRecord& nic, pb::NicAttachment* out) {
  out->set_switch_name(nic.switch_name);
  out->set_nic(nic.nic);
}

void Fill(const VmAttachmentView& view, pb::VmAttachment* out) {
  const VmAttachmentRecord& vm = view.record;
  out->set_name(vm.name);
  out->set_trust(static_cast<pb::TrustPolicy>(vm.trust));
  out->set_switch_name(vm.switch_name);
  out->set_pipe_name(vm.pipe_name);
  for (const std::string& peer : vm.peers) out->add_peers(peer);
  out->set_rings(vm.rings);
  out->set_vectors(VectorsForRings(vm.rings));
  out->set_peer_id(PeerIdOf(vm));
  out->set_region_bytes(vm.region_bytes);
  out->set_netmap_name(view.netmap_name);
  out->set_socket_path(view.socket_path);
  out->set_libvirt_xml(view.libvirt_xml);
}

void Fill(const PortCounters& c, pb::Counters* out) {
  out->set_rx_packets(c.rx_packets);
  out->set_rx_bytes(c.rx_bytes);
  out->set_tx_packets(c.tx_packets);
  out->set_tx_bytes(c.tx_bytes);
  pb::DropCounters* drops = out->mutable_drops();
  drops->set_ring_full(c.drops.ring_full);
  drops->set_bad_descriptor(c.drops.bad_descriptor);
  drops->set_oversize(c.drops.oversize);
  drops->set_no_destination(c.drops.no_destination);
  out->set_kicks(c.kicks);
  out->set_interrupts(c.interrupts);
  out->set_worker_wakeups(c.worker_wakeups);
}

// Stores a StatusOr's value through Fill, or returns its error.
template <typename T, typename Out>
absl::Status FillOr(const absl::StatusOr<T>& result, Out* out) {
  if (result.ok()) Fill(*result, out);
  return result.status();
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

template <typename Body>
grpc::Status PtnetmapService::Handle(absl::string_view method, Body&& body) {
  const absl::Time start = absl::Now();
  grpc::Status status = ToGrpcStatus(body());
  if (observer_ != nullptr) observer_->OnRpc(method, status.error_code(), absl::Now() - start);
  return status;
}

grpc::Status PtnetmapService::CreateSwitch(ServerContext*, const pb::CreateSwitchRequest* req,
                                           pb::Switch* resp) {
  return Handle("CreateSwitch", [&] { return FillOr(manager_.CreateSwitch(req->name()), resp); });
}

grpc::Status PtnetmapService::DeleteSwitch(ServerContext*, const pb::DeleteSwitchRequest* req,
                                           pb::DeleteSwitchResponse*) {
  return Handle("DeleteSwitch", [&] { return manager_.DeleteSwitch(req->name()); });
}

grpc::Status PtnetmapService::GetSwitch(ServerContext*, const pb::GetSwitchRequest* req,
                                        pb::Switch* resp) {
  return Handle("GetSwitch", [&] { return FillOr(manager_.GetSwitch(req->name()), resp); });
}

grpc::Status PtnetmapService::ListSwitches(ServerContext*, const pb::ListSwitchesRequest*,
                                           pb::ListSwitchesResponse* resp) {
  return Handle("ListSwitches", [&] {
    for (const SwitchView& sw : manager_.ListSwitches()) Fill(sw, resp->add_switches());
    return absl::OkStatus();
  });
}

grpc::Status PtnetmapService::CreatePort(ServerContext*, const pb::CreatePortRequest* req,
                                         pb::Port* resp) {
  return Handle("CreatePort", [&] {
    return FillOr(manager_.CreatePort(req->switch_name(), req->name()), resp);
  });
}

grpc::Status PtnetmapService::DeletePort(ServerContext*, const pb::DeletePortRequest* req,
                                         pb::DeletePortResponse*) {
  return Handle("DeletePort",
                [&] { return manager_.DeletePort(req->switch_name(), req->name()); });
}

grpc::Status PtnetmapService::ListPorts(ServerContext*, const pb::ListPortsRequest* req,
                                        pb::ListPortsResponse* resp) {
  return Handle("ListPorts", [&] {
    absl::StatusOr<std::vector<PortRecord>> ports = manager_.ListPorts(req->switch_name());
    if (!ports.ok()) return ports.status();
    for (const PortRecord& port : *ports) Fill(port, resp->add_ports());
    return absl::OkStatus();
  });
}

grpc::Status PtnetmapService::CreatePipe(ServerContext*, const pb::CreatePipeRequest* req,
                                         pb::Pipe* resp) {
  return Handle("CreatePipe", [&] { return FillOr(manager_.CreatePipe(req->name()), resp); });
}

grpc::Status PtnetmapService::DeletePipe(ServerContext*, const pb::DeletePipeRequest* req,
                                         pb::DeletePipeResponse*) {
  return Handle("DeletePipe", [&] { return manager_.DeletePipe(req->name()); });
}

grpc::Status PtnetmapService::ListPipes(ServerContext*, const pb::ListPipesRequest*,
                                        pb::ListPipesResponse* resp) {
  return Handle("ListPipes", [&] {
    for (const PipeView& pipe : manager_.ListPipes()) Fill(pipe, resp->add_pipes());
    return absl::OkStatus();
  });
}

grpc::Status PtnetmapService::AttachNic(ServerContext*, const pb::AttachNicRequest* req,
                                        pb::NicAttachment* resp) {
  return Handle("AttachNic", [&] {
    return FillOr(manager_.AttachNic(req->switch_name(), req->nic()), resp);
  });
}

grpc::Status PtnetmapService::DetachNic(ServerContext*, const pb::DetachNicRequest* req,
                                        pb::DetachNicResponse*) {
  return Handle("DetachNic", [&] { return manager_.DetachNic(req->nic()); });
}

grpc::Status PtnetmapService::ListNicAttachments(ServerContext*,
                                                 const pb::ListNicAttachmentsRequest*,
                                                 pb::ListNicAttachmentsResponse* resp) {
  return Handle("ListNicAttachments", [&] {
    for (const NicRecord& nic : manager_.ListNics()) Fill(nic, resp->add_nics());
    return absl::OkStatus();
  });
}

grpc::Status PtnetmapService::CreateVmAttachment(ServerContext*,
                                                 const pb::CreateVmAttachmentRequest* req,
                                                 pb::VmAttachment* resp) {
  return Handle("CreateVmAttachment", [&] {
    VmAttachmentRequest request{.name = req->name(),
                                .switch_name = req->switch_name(),
                                .pipe_name = req->pipe_name(),
                                .peers = {req->peers().begin(), req->peers().end()},
                                .rings = req->rings(),
                                .region_bytes = req->region_bytes()};
    if (req->trust() == pb::TRUST_POLICY_UNTRUSTED) request.trust = Trust::kUntrusted;
    if (req->trust() == pb::TRUST_POLICY_TRUSTED) request.trust = Trust::kTrusted;
    return FillOr(manager_.CreateVmAttachment(request), resp);
  });
}

grpc::Status PtnetmapService::DeleteVmAttachment(ServerContext*,
                                                 const pb::DeleteVmAttachmentRequest* req,
                                                 pb::DeleteVmAttachmentResponse*) {
  return Handle("DeleteVmAttachment", [&] { return manager_.DeleteVmAttachment(req->name()); });
}

grpc::Status PtnetmapService::GetVmAttachment(ServerContext*,
                                              const pb::GetVmAttachmentRequest* req,
                                              pb::VmAttachment* resp) {
  return Handle("GetVmAttachment",
                [&] { return FillOr(manager_.GetVmAttachment(req->name()), resp); });
}

grpc::Status PtnetmapService::ListVmAttachments(ServerContext*,
                                                const pb::ListVmAttachmentsRequest*,
                                                pb::ListVmAttachmentsResponse* resp) {
  return Handle("ListVmAttachments", [&] {
    for (const VmAttachmentView& vm : manager_.ListVmAttachments()) {
      Fill(vm, resp->add_vm_attachments());
    }
    return absl::OkStatus();
  });
}

grpc::Status PtnetmapService::GetStats(ServerContext*, const pb::GetStatsRequest*,
                                       pb::GetStatsResponse* resp) {
  return Handle("GetStats", [&] {
    absl::StatusOr<Stats> stats = manager_.GetStats();
    if (!stats.ok()) return stats.status();
    for (const PortStatsEntry& port : stats->ports) {
      pb::PortStats* out = resp->add_ports();
      out->set_switch_name(port.switch_name);
      out->set_name(port.name);
      out->set_kind(port.kind);
      Fill(port.counters, out->mutable_counters());
    }
    for (const VmStatsEntry& vm : stats->vm_attachments) {
      pb::AttachmentStats* out = resp->add_vm_attachments();
      out->set_name(vm.name);
      out->set_trust(static_cast<pb::TrustPolicy>(vm.trust));
      Fill(vm.counters, out->mutable_counters());
    }
    return absl::OkStatus();
  });
}

}  // namespace ptnetmap::agent
