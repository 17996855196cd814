// PtnetmapService: the gRPC face of the Manager. It only converts messages
// and maps absl::Status to grpc::Status (same numeric codes, message kept);
// every rule lives in the manager.
#ifndef PTNETMAP_AGENT_SERVICE_H_
#define PTNETMAP_AGENT_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/manager.h"
#include "ptnetmap/v1/ptnetmap.grpc.pb.h"

namespace ptnetmap::agent {

// Told about every finished RPC (metrics.h implements it).
class RpcObserver {
 public:
  virtual ~RpcObserver() = default;
  virtual void OnRpc(absl::string_view method, grpc::StatusCode code,
                     absl::Duration latency) = 0;
};

grpc::Status ToGrpcStatus(const absl::Status& status);

class PtnetmapService final : public ptnetmap::v1::Ptnetmap::Service {
 public:
  // `observer` may be null.
  PtnetmapService(Manager& manager, RpcObserver* observer)
      : manager_(manager), observer_(observer) {}

  using ServerContext = grpc::ServerContext;
  grpc::Status CreateSwitch(ServerContext*, const v1::CreateSwitchRequest*, v1::Switch*) override;
  grpc::Status DeleteSwitch(ServerContext*, const v1::DeleteSwitchRequest*,
                            v1::DeleteSwitchResponse*) override;
  grpc::Status GetSwitch(ServerContext*, const v1::GetSwitchRequest*, v1::Switch*) override;
  grpc::Status ListSwitches(ServerContext*, const v1::ListSwitchesRequest*,
                            v1::ListSwitchesResponse*) override;
  grpc::Status CreatePort(ServerContext*, const v1::CreatePortRequest*, v1::Port*) override;
  grpc::Status DeletePort(ServerContext*, const v1::DeletePortRequest*,
                          v1::DeletePortResponse*) override;
  grpc::Status ListPorts(ServerContext*, const v1::ListPortsRequest*,
                         v1::ListPortsResponse*) override;
  grpc::Status CreatePipe(ServerContext*, const v1::CreatePipeRequest*, v1::Pipe*) override;
  grpc::Status DeletePipe(ServerContext*, const v1::DeletePipeRequest*,
                          v1::DeletePipeResponse*) override;
  grpc::Status ListPipes(ServerContext*, const v1::ListPipesRequest*,
                         v1::ListPipesResponse*) override;
  grpc::Status AttachNic(ServerContext*, const v1::AttachNicRequest*,
                         v1::NicAttachment*) override;
  grpc::Status DetachNic(ServerContext*, const v1::DetachNicRequest*,
                         v1::DetachNicResponse*) override;
  grpc::Status ListNicAttachments(ServerContext*, const v1::ListNicAttachmentsRequest*,
                                  v1::ListNicAttachmentsResponse*) override;
  grpc::Status CreateVmAttachment(ServerContext*, const v1::CreateVmAttachmentRequest*,
                                  v1::VmAttachment*) override;
  grpc::Status DeleteVmAttachment(ServerContext*, const v1::DeleteVmAttachmentRequest*,
                                  v1::DeleteVmAttachmentResponse*) override;
  grpc::Status GetVmAttachment(ServerContext*, const v1::GetVmAttachmentRequest*,
                               v1::VmAttachment*) override;
  grpc::Status ListVmAttachments(ServerContext*, const v1::ListVmAttachmentsRequest*,
                                 v1::ListVmAttachmentsResponse*) override;
  grpc::Status GetStats(ServerContext*, const v1::GetStatsRequest*,
                        v1::GetStatsResponse*) override;

 private:
  // Runs `body`, converts its status and reports the call to the observer.
  template <typename Body>
  grpc::Status Handle(absl::string_view method, Body&& body);

  Manager& manager_;
  RpcObserver* observer_;
};

}  // namespace ptnetmap::agent

#endif  // PTNETMAP_AGENT_SERVICE_H_
