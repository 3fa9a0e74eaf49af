"""The VM test harness: a Debian image with the mail stack, QEMU machines driven over QMP
and SSH, and the scenario suite that proves a compiled deploy delivers real mail."""
