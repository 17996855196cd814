# Helpers to register tests that run inside the lab VM (tests/lab/lab.py).
#
#   add_lab_test(NAME name COMMAND cmd args... [KVM] [SWITCH_ROOT] [TIMEOUT s]
#                [LABELS l...])
#
# The command runs at level 1 (the lab VM, our module loaded); with KVM the VM
# also loads KVM so the command can start level-2 guests with
# `tests/lab/lab.py guest`. With SWITCH_ROOT the command runs with the host's
# filesystem as the root of the mount namespace instead of in a chroot, as
# AppArmor's path-based profiles need (tests/lab/init.sh). Tests get the label `lab` unless LABELS says
# otherwise (e2e tests say `e2e`). A lab failure (module load or unload error,
# oops, warning, timeout) fails the test with exit status 125 and a message.
set(LAB_PY ${PROJECT_SOURCE_DIR}/tests/lab/lab.py)

function(add_lab_test)
  cmake_parse_arguments(LT "KVM;SWITCH_ROOT" "NAME;TIMEOUT" "COMMAND;LABELS" ${ARGN})
  if(NOT LT_TIMEOUT)
    set(LT_TIMEOUT 300)
  endif()
  if(NOT LT_LABELS)
    set(LT_LABELS lab)
  endif()
  set(flags --quiet --timeout ${LT_TIMEOUT} --module ${PTNETMAP_KO})
  if(LT_KVM)
    list(APPEND flags --kvm)
  endif()
  if(LT_SWITCH_ROOT)
    list(APPEND flags --switch-root)
  endif()
  add_test(NAME ${LT_NAME} COMMAND ${LAB_PY} run ${flags} -- ${LT_COMMAND})
  # lab.py boots the VM a second time when the emulator loses its timer
  # interrupts (see TIMER_LOST in lab.py): room for that second run.
  math(EXPR ctest_timeout "${LT_TIMEOUT} * 2 + 60")
  # Each VM uses two vCPUs of emulation: let ctest count them.
  set_tests_properties(${LT_NAME} PROPERTIES LABELS "${LT_LABELS}"
    TIMEOUT ${ctest_timeout} PROCESSORS 2)
endfunction()
