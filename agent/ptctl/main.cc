// ptctl: command-line client of ptnetd. Everything is in the ptctl library;
// see ptctl.h and `ptctl --help`.
#include <iostream>
#include <string>
#include <vector>

#include "agent/ptctl/ptctl.h"

int main(int argc, char** argv) {
  return ptnetmap::ptctl::Main(std::vector<std::string>(argv + 1, argv + argc), std::cout,
                               std::cerr);
}
