// UniqueFd: owns one file descriptor and closes it once. It lives in qemu/
// (the ivshmem library the agent links) and is used throughout the agent.
#ifndef PTNETMAP_AGENT_UNIQUE_FD_H_
#define PTNETMAP_AGENT_UNIQUE_FD_H_

#include "qemu/unique_fd.h"

namespace ptnetmap::agent {

using ::ptnetmap::UniqueFd;

}  // namespace ptnetmap::agent

#endif  // PTNETMAP_AGENT_UNIQUE_FD_H_
