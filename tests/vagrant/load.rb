# Loads a Vagrantfile offline, with a stand-in for Vagrant's configuration
# API that records every setting and call, and prints them as JSON. Vagrant
# and its boxes cannot be downloaded here; this proves the file is valid Ruby
# that configures what it claims (boxes, synced folder, provisioning).
#
#   ruby tests/vagrant/load.rb vagrant/Vagrantfile
require "json"

class Recorder
  attr_reader :data

  def initialize
    @data = {}
  end

  def method_missing(name, *args, **opts, &blk)
    key = name.to_s
    if key.end_with?("=")
      @data[key.chomp("=")] = args.first
    elsif blk
      child = Recorder.new
      blk.call(child)
      (@data[key] ||= []) << { "args" => args, "opts" => opts, "config" => child }
    elsif args.empty? && opts.empty?
      @data[key] ||= Recorder.new # a namespace such as config.vm
    else
      (@data[key] ||= []) << { "args" => args, "opts" => opts }
      nil
    end
  end

  def respond_to_missing?(*)
    true
  end

  def to_json(*a)
    @data.to_json(*a)
  end
end

module Vagrant
  CONFIGS = []

  def self.configure(version)
    raise ArgumentError, "configuration version #{version}, expected \"2\"" unless version == "2"
    config = Recorder.new
    yield config
    CONFIGS << config
  end
end

Dir.chdir(File.dirname(ARGV.fetch(0))) { load File.basename(ARGV[0]) }
abort "no Vagrant.configure block" if Vagrant::CONFIGS.empty?
puts JSON.generate(Vagrant::CONFIGS.first)
