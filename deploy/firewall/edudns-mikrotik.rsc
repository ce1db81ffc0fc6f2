# edudns: keep student devices on the school's filtering resolver (MikroTik RouterOS 7).
# Import with: /import file-name=edudns-mikrotik.rsc   (edit the addresses first)

/ip firewall address-list
add list=students address=10.20.16.0/20 comment="edudns: THCS"
add list=students address=10.20.32.0/20 comment="edudns: THPT"

# Redirect every plain DNS query from students to edudns (10.20.0.53).
/ip firewall nat
add chain=dstnat src-address-list=students dst-address=!10.20.0.53 protocol=udp dst-port=53 action=dst-nat to-addresses=10.20.0.53 comment="edudns: DNS to the filter"
add chain=dstnat src-address-list=students dst-address=!10.20.0.53 protocol=tcp dst-port=53 action=dst-nat to-addresses=10.20.0.53 comment="edudns: DNS to the filter"

# Drop DNS over TLS / DNS over QUIC.
/ip firewall filter
add chain=forward src-address-list=students protocol=tcp dst-port=853 action=reject reject-with=tcp-reset comment="edudns: no DoT"
add chain=forward src-address-list=students protocol=udp dst-port=853 action=drop comment="edudns: no DoQ"
