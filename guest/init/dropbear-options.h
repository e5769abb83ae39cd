/* localoptions.h for the guest's static dropbear (harness/userland.py copies
 * it into Debian's dropbear source before configure). The guest logs in as
 * root with one per-run ed25519 key; nothing else is needed. */
#define DROPBEAR_SVR_PASSWORD_AUTH 0
#define DROPBEAR_SVR_AGENTFWD 0
#define DROPBEAR_X11FWD 0
#define DROPBEAR_SFTPSERVER 0
#define DO_MOTD 0
#define INETD_MODE 0
#define DROPBEAR_DSS 0
#define DEFAULT_PATH "/bin:/sbin:/usr/bin:/usr/sbin"
#define DEFAULT_ROOT_PATH "/bin:/sbin:/usr/bin:/usr/sbin"
