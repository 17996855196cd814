// The real ptnetd and ptctl binaries as an operator runs them
// (--datapath=fake): configuration survives kill -9, SIGTERM shuts down
// cleanly, and bad start-up conditions are refused with a clear message.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace {

using ::testing::HasSubstr;

struct Output {
  int exit_code;
  std::string text;  // stdout and stderr
};

// Runs a command to completion through the shell.
Output Shell(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  std::string text;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) text.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

class PtnetdProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ptnetd_proc_XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
  }

  std::vector<std::string> AgentArgs() const {
    return {PTNETD_BINARY,
            "--datapath=fake",
            "--socket=" + dir_ + "/ptnetd.sock",
            "--db_path=" + dir_ + "/ptnetd.db",
            "--ivshmem_dir=" + dir_ + "/ivshmem"};
  }

  // Starts ptnetd with `extra` flags; its output goes to dir/ptnetd.log.
  void Spawn(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = AgentArgs();
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = dir_ + "/ptnetd.log";
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    ASSERT_EQ(posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
  }

  // Waits until the agent answers health checks.
  void WaitServing() {
    for (int i = 0; i < 100; ++i) {
      if (Ptctl("health").exit_code == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "ptnetd did not start:\n" << Log();
  }

  int WaitExit() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  Output Ptctl(const std::string& args) const {
    return Shell(absl::StrCat(PTCTL_BINARY, " --socket=", dir_, "/ptnetd.sock ", args));
  }

  std::string Log() const {
    std::ifstream in(dir_ + "/ptnetd.log");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::string dir_;
  pid_t pid_ = -1;
};

TEST_F(PtnetdProcessTest, KillNineLosesNoCommittedConfiguration) {
  Spawn();
  WaitServing();
  ASSERT_EQ(Ptctl("switch create vale0").exit_code, 0);
  ASSERT_EQ(Ptctl("port create vale0 p1").exit_code, 0);
  ASSERT_EQ(Ptctl("nic attach vale0 eth0").exit_code, 0);
  ASSERT_EQ(Ptctl("pipe create pp1").exit_code, 0);
  ASSERT_EQ(Ptctl("vm attach vale0 vm1 --trust untrusted --rings 2").exit_code, 0);
  ASSERT_EQ(Ptctl("vm attach pp1 vm2 --trust trusted --peer vm3").exit_code, 0);
  const std::string before = Ptctl("--output json vm list").text;

  ::kill(pid_, SIGKILL);
  EXPECT_EQ(WaitExit(), 128 + SIGKILL);
  Spawn();
  WaitServing();

  EXPECT_EQ(Ptctl("--output json vm list").text, before);
  EXPECT_EQ(Ptctl("switch list").text,
            "NAME   PORTS  NICS  VM_ATTACHMENTS\n"
            "vale0  p1     eth0  vm1\n");
  EXPECT_THAT(Ptctl("pipe list").text, HasSubstr("pp1   vm2"));
  // The fake "kernel" died with the process, so everything was recreated
  // (the pipe silently: netmap makes pipes on first use, like switches),
  // and the ivshmem sockets are served again.
  EXPECT_THAT(Log(), HasSubstr("0 adopted, 4 recreated, 0 failed"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/ivshmem/vm1.sock"));
  EXPECT_EQ(Ptctl("switch create vale0").exit_code, 3);
}

TEST_F(PtnetdProcessTest, SigtermShutsDownCleanly) {
  Spawn();
  WaitServing();
  ::kill(pid_, SIGTERM);
  EXPECT_EQ(WaitExit(), 0);
  EXPECT_THAT(Log(), HasSubstr("shutting down"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/ptnetd.sock"));
  EXPECT_EQ(Ptctl("switch list").exit_code, 5);
}

TEST_F(PtnetdProcessTest, TcpWithoutMutualTlsIsRefused) {
  Spawn({"--listen_tcp=127.0.0.1:0"});
  EXPECT_EQ(WaitExit(), 2);
  EXPECT_THAT(Log(), HasSubstr("--listen_tcp requires --tls_cert, --tls_key and --tls_client_ca"));
}

TEST_F(PtnetdProcessTest, CorruptDatabaseIsRefusedAndLeftAlone) {
  {
    std::ofstream db(dir_ + "/ptnetd.db", std::ios::binary);
    db << std::string(4096, '\x7f');
  }
  Spawn();
  EXPECT_EQ(WaitExit(), 1);
  EXPECT_THAT(Log(), HasSubstr("is corrupt; restore it from a backup"));
  EXPECT_EQ(std::filesystem::file_size(dir_ + "/ptnetd.db"), 4096u);
}

TEST_F(PtnetdProcessTest, KernelDatapathWithoutModuleSaysWhatToLoad) {
  Spawn({"--datapath=kernel", "--netmap_device=" + dir_ + "/no-netmap"});
  EXPECT_EQ(WaitExit(), 1);
  EXPECT_THAT(Log(), HasSubstr("module not loaded: modprobe ptnetmap"));
}

}  // namespace
