package images

import (
	"os/exec"
	"syscall"
	"time"
)

// groupGrace is how long a cancelled step's processes have to exit on
// SIGTERM before the whole group gets SIGKILL.
const groupGrace = 10 * time.Second

// killGroupOnCancel runs cmd in a process group of its own and, when its
// context ends, sends SIGTERM to the whole group and SIGKILL after
// groupGrace. A build step is often a script (debootstrap forks dpkg, wget,
// chroot): exec.CommandContext alone kills only the script, and its children
// would go on writing into a folder that is being removed.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		pgid := cmd.Process.Pid
		time.AfterFunc(groupGrace, func() { syscall.Kill(-pgid, syscall.SIGKILL) })
		return syscall.Kill(-pgid, syscall.SIGTERM)
	}
	cmd.WaitDelay = groupGrace + time.Second
}
