def scenarios(stack):
    return [
        ("every physical filesystem of this machine",
         ["check_disk_partitions", "-w", "20%", "-c", "10%"]),
        ("the root filesystem, percent and size together, verbose",
         ["check_disk_partitions", "-p", "/", "-w", "20%,50GiB", "-c", "10%,10GiB", "-v"]),
        ("a backup partition that is not there",
         ["check_disk_partitions", "-p", "/data2"]),
    ]
