# Helpers shared by gb_scale's TAP tests.
package GbScaleTest;

use strict;
use warnings;

use Exporter 'import';
our @EXPORT = qw(set_instance_setting);

# Set an instance-wide setting in postgresql.conf (undef: back to its
# default) and reload; returns once new sessions see the value.
sub set_instance_setting
{
	my ($node, $name, $value) = @_;
	$node->adjust_conf('postgresql.conf', $name, undef);
	$node->append_conf('postgresql.conf', "$name = $value\n") if defined $value;
	$node->reload;
	my $check = defined $value ? "setting = '$value'" : 'setting = boot_val';
	$node->poll_query_until('postgres',
		"SELECT $check FROM pg_settings WHERE name = '$name'")
	  or die "$name was not reloaded";
	return;
}

1;
