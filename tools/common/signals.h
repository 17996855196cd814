// SPDX-License-Identifier: BSD-2-Clause
// SIGINT/SIGTERM ask the tools' loops to stop: the handler only sets a flag,
// and is installed without SA_RESTART so a blocking poll() returns at once.
#ifndef PTNETMAP_TOOLS_COMMON_SIGNALS_H_
#define PTNETMAP_TOOLS_COMMON_SIGNALS_H_

namespace ptools {

void InstallStopHandler();
bool StopRequested();

}  // namespace ptools

#endif  // PTNETMAP_TOOLS_COMMON_SIGNALS_H_
